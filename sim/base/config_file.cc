#include "sim/base/config_file.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace shardsim {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::TextFormat;

// Collects the parser's first error (line and column are 0-based).
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (!has_error_) {
      has_error_ = true;
      line_ = line;
      column_ = column;
      message_ = message;
    }
  }
  void AddWarning(int, int, const std::string&) override {}

  bool has_error() const { return has_error_; }
  // "file:line:column: message" for the first error in `text`.
  std::string Describe(const std::string& file, absl::string_view text) const {
    int line = line_;
    int column = column_;
    // The parser reports an unknown enum value where the token after it
    // starts (the next field, often on the next line): point at the value.
    constexpr absl::string_view kEnum = "Unknown enumeration value of \"";
    if (absl::StartsWith(message_, kEnum)) {
      const size_t end = message_.find('"', kEnum.size());
      const std::string value = message_.substr(kEnum.size(), end - kEnum.size());
      size_t offset = 0;  // where the parser stopped
      for (int l = 0; l < line_ && offset != absl::string_view::npos; ++l) {
        offset = text.find('\n', offset);
        if (offset != absl::string_view::npos) ++offset;
      }
      if (offset != absl::string_view::npos && !value.empty()) {
        const size_t at = text.rfind(value, std::min(text.size(), offset + column_));
        if (at != absl::string_view::npos) {
          const absl::string_view before = text.substr(0, at);
          const size_t line_start = before.rfind('\n');
          line = static_cast<int>(std::count(before.begin(), before.end(), '\n'));
          column = static_cast<int>(line_start == absl::string_view::npos
                                        ? at
                                        : at - line_start - 1);
        }
      }
    }
    return absl::StrFormat("%s:%d:%d: %s", file, line + 1, column + 1, message_);
  }

 private:
  bool has_error_ = false;
  int line_ = 0;
  int column_ = 0;
  std::string message_;
};

// Walks a ParseInfoTree and records the location of every field set in it.
void RecordLocations(const Message& message,
                     const TextFormat::ParseInfoTree& tree,
                     const std::string& prefix, FieldLocator* locator) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  // Every field of the type, not ListFields(): proto3 leaves out a scalar
  // equal to its default, so "batch_size: 0" would have no location and its
  // error would point at the enclosing message. The parse tree knows what
  // was written.
  const google::protobuf::Descriptor* type = message.GetDescriptor();
  for (int f = 0; f < type->field_count(); ++f) {
    const FieldDescriptor* field = type->field(f);
    const int count =
        field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      const int index = field->is_repeated() ? i : -1;
      std::string path = prefix + field->name();
      if (field->is_repeated()) absl::StrAppend(&path, "[", i, "]");
      const TextFormat::ParseLocation location = tree.GetLocation(field, index);
      if (location.line >= 0) {
        locator->AddLocation(path, location.line, location.column);
        // An error about a whole repeated field points at its first entry.
        if (field->is_repeated() && i == 0) {
          locator->AddLocation(prefix + field->name(), location.line,
                               location.column);
        }
      }
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        const TextFormat::ParseInfoTree* nested =
            tree.GetTreeForNested(field, index);
        if (nested == nullptr) continue;
        const Message& child =
            field->is_repeated()
                ? reflection->GetRepeatedMessage(message, field, i)
                : reflection->GetMessage(message, field);
        RecordLocations(child, *nested, path + ".", locator);
      }
    }
  }
}

}  // namespace

std::string FieldLocator::Where(absl::string_view field_path) const {
  const std::string full = prefix_ + std::string(field_path);
  // A field set on the command line is reported as such, even if the file
  // also sets it: the override is the value that was checked. An error about
  // a whole message (parallelism) names an override of one of its fields.
  auto child = overrides_->lower_bound(full + ".");
  if (child != overrides_->end() &&
      absl::StartsWith(child->first, full + ".")) {
    return absl::StrCat("--set ", child->second);
  }
  for (std::string path = full;;) {
    auto it = overrides_->find(path);
    if (it != overrides_->end()) return absl::StrCat("--set ", it->second);
    const size_t dot = path.rfind('.');
    if (dot == std::string::npos) break;
    path.resize(dot);
  }
  // The field itself, else the closest enclosing message written in the
  // file. With a fallback, stop at the nested message's own fields: the rest
  // were written in the fallback's file.
  const size_t floor = fallback_ != nullptr ? prefix_.size() : 0;
  for (std::string path = full; path.size() > floor;) {
    auto it = locations_->find(path);
    if (it != locations_->end()) {
      return absl::StrFormat("%s:%d:%d", file_.empty() ? "<input>" : file_,
                             it->second.line, it->second.column);
    }
    const size_t dot = path.rfind('.');
    if (dot == std::string::npos) break;
    path.resize(dot);
  }
  if (fallback_ != nullptr) return fallback_->Where(field_path);
  return file_.empty() ? "<input>" : file_;
}

absl::Status FieldLocator::Error(absl::string_view field_path,
                                 absl::string_view message) const {
  return absl::InvalidArgumentError(absl::StrCat(
      Where(field_path), ": ", prefix_, field_path, ": ", message));
}

FieldLocator FieldLocator::Nested(absl::string_view field_path) const {
  FieldLocator nested = *this;
  nested.prefix_ = absl::StrCat(prefix_, field_path, ".");
  return nested;
}

void FieldLocator::AddLocation(std::string field_path, int line, int column) {
  (*locations_)[std::move(field_path)] = Location{line + 1, column + 1};
}

void FieldLocator::AddOverride(std::string field_path, std::string text) {
  (*overrides_)[std::move(field_path)] = std::move(text);
}

absl::Status ReadFile(const std::string& path, std::string* contents) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(path, error);  // follows links
  if (fs::is_directory(status)) {
    return absl::NotFoundError(absl::StrCat(path, ": is a directory, not a file"));
  }
  // A device never ends (/dev/zero, /dev/urandom: the read would fill
  // memory) or is not a file at all. A FIFO is read: `shardsim run
  // <(sed ...)` passes a pipe, whose writer ends it.
  if (fs::is_character_file(status) || fs::is_block_file(status) || fs::is_socket(status)) {
    return absl::NotFoundError(absl::StrCat(
        path, ": is not a regular file (a ",
        fs::is_character_file(status) ? "character device"
        : fs::is_block_file(status)   ? "block device"
                                      : "socket",
        ")"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat(path, ": read failed"));
  }
  *contents = buffer.str();
  return absl::OkStatus();
}

size_t FirstInvalidUtf8(absl::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  size_t i = 0;
  while (i < size) {
    const unsigned char c = bytes[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // The length of the sequence, and the range its second byte may take
    // (narrower than 80..BF where overlongs, surrogates or > U+10FFFF start).
    int length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;
      if (c == 0xED) high = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;
      if (c == 0xF4) high = 0x8F;
    } else {
      return i;
    }
    if (i + static_cast<size_t>(length) > size) return i;
    if (bytes[i + 1] < low || bytes[i + 1] > high) return i;
    for (int k = 2; k < length; ++k) {
      if (bytes[i + static_cast<size_t>(k)] < 0x80 ||
          bytes[i + static_cast<size_t>(k)] > 0xBF) {
        return i;
      }
    }
    i += static_cast<size_t>(length);
  }
  return absl::string_view::npos;
}

absl::Status CheckUtf8(absl::string_view text, const std::string& file) {
  const size_t bad = FirstInvalidUtf8(text);
  if (bad == absl::string_view::npos) return absl::OkStatus();
  const absl::string_view before = text.substr(0, bad);
  const size_t line_start = before.rfind('\n');
  const size_t line =
      1 + static_cast<size_t>(std::count(before.begin(), before.end(), '\n'));
  const size_t column =
      1 + (line_start == absl::string_view::npos ? bad : bad - line_start - 1);
  return absl::InvalidArgumentError(absl::StrFormat(
      "%s:%d:%d: not UTF-8 text (byte 0x%02x); save the file as UTF-8", file,
      line, column, static_cast<unsigned char>(text[bad])));
}

absl::Status ParseTextProto(const std::string& text, const std::string& file,
                            Message* message, FieldLocator* locator) {
  // Before the parser: it would log its own complaint about a string field
  // to stderr and keep the bytes.
  absl::Status utf8 = CheckUtf8(text, file);
  if (!utf8.ok()) return utf8;
  FirstErrorCollector errors;
  TextFormat::ParseInfoTree tree;
  TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(text, message) || errors.has_error()) {
    return absl::InvalidArgumentError(errors.Describe(file, text));
  }
  *locator = FieldLocator(file);
  RecordLocations(*message, tree, "", locator);
  return absl::OkStatus();
}

absl::Status LoadTextProto(const std::string& path, Message* message,
                           FieldLocator* locator) {
  std::string text;
  absl::Status status = ReadFile(path, &text);
  if (!status.ok()) return status;
  return ParseTextProto(text, path, message, locator);
}

std::string ResolveRelative(const std::string& base_file,
                            const std::string& relative) {
  if (relative.empty() || relative[0] == '/') return relative;
  const size_t slash = base_file.rfind('/');
  if (slash == std::string::npos) return relative;
  return base_file.substr(0, slash + 1) + relative;
}

bool IsJsonPath(absl::string_view path) {
  return absl::EndsWith(path, ".json");
}

}  // namespace shardsim
