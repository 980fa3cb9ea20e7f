#include "sim/scenario/overrides.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "sim/base/config_file.h"

namespace shardsim::scenario {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

std::string FieldNames(const Descriptor* descriptor) {
  std::vector<std::string> names;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    names.push_back(descriptor->field(i)->name());
  }
  return absl::StrJoin(names, ", ");
}

// Silences the text parser; its message is rebuilt with the override's name.
class SilentErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int, int, const std::string& message) override {
    if (first_.empty()) first_ = message;
  }
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

}  // namespace

absl::StatusOr<Override> ParseOverride(absl::string_view text) {
  // Errors repeat the override, so it must print as one line of UTF-8: a
  // line break would split the one-line error, other bytes could not go
  // into a JSON report or a protobuf string.
  if (text.find_first_of("\n\r") != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--set ", absl::CHexEscape(text), ": a value must be one line"));
  }
  if (FirstInvalidUtf8(text) != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--set ", absl::CHexEscape(text), ": not UTF-8 text"));
  }
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos || eq == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--set ", text, ": expected field.path=value"));
  }
  Override o;
  o.path = std::string(text.substr(0, eq));
  o.value = std::string(text.substr(eq + 1));
  o.text = std::string(text);
  return o;
}

absl::Status ApplyOverride(const Override& o, Message* root) {
  const std::vector<std::string> parts = absl::StrSplit(o.path, '.');
  Message* message = root;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Descriptor* descriptor = message->GetDescriptor();
    // "pools[1]": a field name and an entry of it.
    absl::string_view name = parts[i];
    int64_t index = -1;
    if (const size_t open = name.find('['); open != absl::string_view::npos) {
      const absl::string_view digits = name.substr(open + 1, name.size() - open - 2);
      if (name.back() != ']' || digits.empty() ||
          digits.find_first_not_of("0123456789") != absl::string_view::npos ||
          digits.size() > 9) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--set ", o.text, ": '", parts[i],
            "' is not a field name or an entry of one (name[index], index from 0)"));
      }
      index = std::stoll(std::string(digits));
      name = name.substr(0, open);
    }
    const FieldDescriptor* field = descriptor->FindFieldByName(std::string(name));
    if (field == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--set ", o.text, ": no field '", name, "' in ",
          descriptor->full_name(), " (fields: ", FieldNames(descriptor), ")"));
    }
    const bool last = i + 1 == parts.size();
    const bool is_message = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (index >= 0 && !(field->is_repeated() && is_message)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--set ", o.text, ": '", name, "' is not a repeated message, so takes no [index]",
          field->is_repeated() ? " (a list is set whole: 0,2,4,6)" : ""));
    }
    if (field->is_repeated() && is_message) {
      if (index < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--set ", o.text, ": '", name, "' is a repeated message: address one entry, ",
            name, "[0].field"));
      }
      const int size = message->GetReflection()->FieldSize(*message, field);
      // The index one past the last entry appends one (an empty entry the
      // rest of the path then fills): how a plan's pool candidate adds
      // pools to a base scenario without them, and stays "base + --set".
      if (index == size && !last) {
        message = message->GetReflection()->AddMessage(message, field);
        continue;
      }
      if (index >= size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--set ", o.text, ": ", name, "[", index, "] is out of range: ", name, " has ",
            size == 0   ? "no entries"
            : size == 1 ? absl::StrCat("1 entry (", name, "[0])")
                        : absl::StrCat(size, " entries (", name, "[0] .. ", name, "[", size - 1,
                                       "])")));
      }
      if (last) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--set ", o.text, ": '", parts[i], "' is a message; set one of ",
            "its fields (", FieldNames(field->message_type()), ")"));
      }
      message = message->GetReflection()->MutableRepeatedMessage(message, field,
                                                                 static_cast<int>(index));
      continue;
    }
    if (field->is_repeated() && !last) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--set ", o.text, ": '", name, "' is a list, not a message"));
    }
    if (field->is_repeated()) {
      // A list of scalars: "0,2,4,6" replaces the whole list ("" empties it).
      std::string text;
      if (!o.value.empty()) {
        for (absl::string_view item : absl::StrSplit(o.value, ',')) {
          absl::StrAppend(&text, field->name(), ": ", item, "\n");
        }
      }
      SilentErrors errors;
      google::protobuf::TextFormat::Parser parser;
      parser.RecordErrorsTo(&errors);
      std::unique_ptr<Message> scratch(message->New());
      if (!parser.ParseFromString(text, scratch.get())) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--set ", o.text, ": invalid list '", o.value, "' for ",
            field->full_name(), " (expected comma-separated ", field->cpp_type_name(),
            " values)"));
      }
      const google::protobuf::Reflection* reflection = message->GetReflection();
      reflection->ClearField(message, field);
      std::vector<const FieldDescriptor*> one = {field};
      reflection->SwapFields(message, scratch.get(), one);
      return absl::OkStatus();
    }
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (last) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--set ", o.text, ": '", parts[i], "' is a message; set one of ",
            "its fields (", FieldNames(field->message_type()), ")"));
      }
      message = message->GetReflection()->MutableMessage(message, field);
      continue;
    }
    if (!last) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--set ", o.text, ": '", parts[i], "' is not a message"));
    }
    std::string value = o.value;
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
        (value.empty() || (value.front() != '"' && value.front() != '\''))) {
      value = absl::StrCat("\"", absl::CEscape(value), "\"");
    }
    SilentErrors errors;
    google::protobuf::TextFormat::Parser parser;
    parser.RecordErrorsTo(&errors);
    // Parse "name: value" into a scratch copy so a bad value changes nothing.
    std::unique_ptr<Message> scratch(message->New());
    if (!parser.ParseFromString(absl::StrCat(field->name(), ": ", value),
                                scratch.get())) {
      std::string expected;
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) {
        std::vector<std::string> names;
        for (int v = 0; v < field->enum_type()->value_count(); ++v) {
          names.push_back(field->enum_type()->value(v)->name());
        }
        expected = absl::StrCat(" (one of ", absl::StrJoin(names, ", "), ")");
      } else {
        expected = absl::StrCat(" (expected a ", field->cpp_type_name(), ")");
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "--set ", o.text, ": invalid value '", o.value, "' for ",
          field->full_name(), expected));
    }
    const google::protobuf::Reflection* reflection = message->GetReflection();
    reflection->ClearField(message, field);
    std::vector<const FieldDescriptor*> one = {field};
    reflection->SwapFields(message, scratch.get(), one);
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

}  // namespace shardsim::scenario
