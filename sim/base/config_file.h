// Reading config files and pointing errors at the line that caused them.
//
// Every config file (model, topology, scenario) is protobuf text format, read
// with a parser that rejects unknown field names, so a typo is an error that
// names file:line:column. Checks made after parsing (a negative size, a tp
// that does not divide the heads) use a FieldLocator to name the same place:
//
//   FieldLocator where;
//   SHARDSIM_RETURN_IF_ERROR(LoadTextProto("scenarios/a.textproto", &s, &where));
//   if (s.workload().batch_size() <= 0)
//     return where.Error("workload.batch_size", "must be positive");
//   // -> "scenarios/a.textproto:7:5: workload.batch_size: must be positive"
#ifndef SHARDSIM_SIM_BASE_CONFIG_FILE_H_
#define SHARDSIM_SIM_BASE_CONFIG_FILE_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace shardsim {

// Maps field paths ("workload.batch_size") of one loaded message to where
// they were written. Copyable; cheap to pass around by const reference.
class FieldLocator {
 public:
  // A locator for a message that did not come from a file (built in code).
  FieldLocator() = default;
  explicit FieldLocator(std::string file) : file_(std::move(file)) {}

  // The file the message came from ("" when none).
  const std::string& file() const { return file_; }

  // "file:line:column" of `field_path` when the file sets it, else the file
  // name alone; "--set path=value" when a command-line override set it.
  std::string Where(absl::string_view field_path) const;

  // InvalidArgument "<where>: <field_path>: <message>".
  absl::Status Error(absl::string_view field_path,
                     absl::string_view message) const;

  // A locator for the sub-message at `field_path`, so that a nested message
  // (an inline model in a scenario) can be checked with its own paths.
  FieldLocator Nested(absl::string_view field_path) const;

  // Fields this locator does not know are looked up in `fallback` (the file
  // a scenario's model_file names, under the scenario's inline overrides).
  void SetFallback(const FieldLocator& fallback) {
    fallback_ = std::make_shared<FieldLocator>(fallback);
  }

  // Records where each field was written (0-based line/column from the
  // protobuf parser). Used by the loaders.
  void AddLocation(std::string field_path, int line, int column);
  // Records that `field_path` was set on the command line to `text`.
  void AddOverride(std::string field_path, std::string text);

 private:
  struct Location {
    int line = 0;    // 1-based
    int column = 0;  // 1-based
  };
  std::string file_;
  std::string prefix_;  // "model." for a nested locator
  std::shared_ptr<const FieldLocator> fallback_;
  std::shared_ptr<std::map<std::string, Location>> locations_ =
      std::make_shared<std::map<std::string, Location>>();
  std::shared_ptr<std::map<std::string, std::string>> overrides_ =
      std::make_shared<std::map<std::string, std::string>>();
};

// Reads a whole file. NotFound names the path when it cannot be opened, or
// is a directory or a device (a FIFO is read until its writer closes it).
absl::Status ReadFile(const std::string& path, std::string* contents);

// The offset of the first byte of `text` that is not well-formed UTF-8
// (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF),
// or npos when all of it is.
size_t FirstInvalidUtf8(absl::string_view text);

// InvalidArgument "<file>:line:column: not UTF-8 text (byte 0xNN)" at the
// first byte that is not. Text we read must be UTF-8: protobuf's string
// fields and JSON require it, and a table row holding other bytes could not
// be read back.
absl::Status CheckUtf8(absl::string_view text, const std::string& file);

// Parses protobuf text `text` (named `file` in errors) into `message`,
// rejecting unknown fields and text that is not UTF-8, and fills `locator`
// with where each field is.
absl::Status ParseTextProto(const std::string& text, const std::string& file,
                            google::protobuf::Message* message,
                            FieldLocator* locator);

// ReadFile + ParseTextProto.
absl::Status LoadTextProto(const std::string& path,
                           google::protobuf::Message* message,
                           FieldLocator* locator);

// Resolves `relative` against the directory of `base_file`; absolute paths
// are returned unchanged.
std::string ResolveRelative(const std::string& base_file,
                            const std::string& relative);

// True when `path` names a JSON file (ends in .json).
bool IsJsonPath(absl::string_view path);

}  // namespace shardsim

#endif  // SHARDSIM_SIM_BASE_CONFIG_FILE_H_
