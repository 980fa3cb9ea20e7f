#include "sim/scenario/sweep_spec.h"

#include <set>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "google/protobuf/text_format.h"
#include "sim/base/status_macros.h"
#include "sim/proto/scenario.pb.h"
#include "sim/scenario/overrides.h"
#include "sim/scenario/scenario.h"
#include "sim/serving/requests.h"

namespace shardsim::scenario {
namespace {

// ApplyOverride's messages start "--set path=value: "; in a sweep file the
// location already says which entry it is.
std::string WithoutSetPrefix(const absl::Status& status, const Override& o) {
  absl::string_view message = status.message();
  absl::ConsumePrefix(&message, absl::StrCat("--set ", o.text, ": "));
  return std::string(message);
}

// One swept field: where it came from in the file, for errors.
struct Column {
  std::string path;
  std::string field;  // "axes[0]" or "zipped[1].axes[0]"
  const v1::Axis* axis = nullptr;
};

// Checks that every value of `column` can be set on the base scenario.
absl::Status CheckAxis(const Column& column, const v1::Scenario& base,
                       const FieldLocator& where) {
  if (column.path.empty()) {
    return where.Error(absl::StrCat(column.field, ".path"),
                       "missing: name the scenario field to vary");
  }
  if (column.axis->values().empty()) {
    return where.Error(absl::StrCat(column.field, ".values"),
                       absl::StrCat("no values for ", column.path));
  }
  const bool zipped = absl::StartsWith(column.field, "zipped");
  std::set<std::string> values;
  for (int j = 0; j < column.axis->values_size(); ++j) {
    // Two equal values would be two points with one key (a zipped axis may
    // repeat a value: its group's positions are checked as a whole).
    if (!zipped && !values.insert(column.axis->values(j)).second) {
      return where.Error(absl::StrCat(column.field, ".values[", j, "]"),
                         absl::StrCat("'", column.axis->values(j), "' is already a value of ",
                                      column.path));
    }
    // A value is a cell of a one-line row and part of the point's key.
    if (column.axis->values(j).find_first_of("\n\r") != std::string::npos) {
      return where.Error(absl::StrCat(column.field, ".values[", j, "]"),
                         "a value must be one line");
    }
    SHARDSIM_ASSIGN_OR_RETURN(
        Override o,
        ParseOverride(absl::StrCat(column.path, "=", column.axis->values(j))));
    v1::Scenario scratch = base;
    const absl::Status status = ApplyOverride(o, &scratch);
    if (status.ok()) continue;
    const std::string message = WithoutSetPrefix(status, o);
    // A bad path fails whatever the value; report it at the path.
    if (absl::StartsWith(message, "invalid value")) {
      return where.Error(absl::StrCat(column.field, ".values[", j, "]"),
                         message);
    }
    return where.Error(absl::StrCat(column.field, ".path"), message);
  }
  return absl::OkStatus();
}

// ---- Skip rules -------------------------------------------------------------

enum class Op { kEq, kNe, kLt, kLe, kGt, kGe };

struct Term {
  enum Kind { kColumn, kNumber, kText } kind = kText;
  int column = 0;     // kColumn
  double number = 0;  // kNumber
  std::string text;   // as written (kText: without quotes)
};

struct Side {
  std::vector<Term> terms;  // more than one: a product
};

struct Condition {
  Side left;
  Op op = Op::kEq;
  Side right;
  std::string field;  // "skip[0].when[1]"
  std::string text;
};

struct Rule {
  std::vector<Condition> conditions;
  std::string reason;
};

bool ParseNumber(absl::string_view text, double* value) {
  return absl::SimpleAtod(text, value) && std::isfinite(*value);
}

// Splits a condition into words, quoted strings, '*' and operators.
absl::StatusOr<std::vector<std::string>> Tokenize(absl::string_view text) {
  std::vector<std::string> tokens;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == ' ' || c == '\t') {
      ++i;
    } else if (c == '\'' || c == '"') {
      const size_t end = text.find(c, i + 1);
      if (end == absl::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("unterminated quote in '", text, "'"));
      }
      tokens.emplace_back(text.substr(i, end + 1 - i));  // quotes kept
      i = end + 1;
    } else if (c == '*') {
      tokens.emplace_back("*");
      ++i;
    } else if (c == '=' || c == '!' || c == '<' || c == '>') {
      const bool two = i + 1 < text.size() && text[i + 1] == '=';
      tokens.emplace_back(text.substr(i, two ? 2 : 1));
      i += two ? 2 : 1;
    } else {
      size_t end = i;
      while (end < text.size() &&
             absl::string_view(" \t'\"*=!<>").find(text[end]) ==
                 absl::string_view::npos) {
        ++end;
      }
      tokens.emplace_back(text.substr(i, end - i));
      i = end;
    }
  }
  return tokens;
}

bool IsOperator(absl::string_view token, Op* op) {
  static const std::pair<const char*, Op> kOps[] = {
      {"==", Op::kEq}, {"!=", Op::kNe}, {"<", Op::kLt},
      {"<=", Op::kLe}, {">", Op::kGt},  {">=", Op::kGe}};
  for (const auto& [name, value] : kOps) {
    if (token == name) {
      *op = value;
      return true;
    }
  }
  return false;
}

absl::StatusOr<Term> ParseTerm(const std::string& token,
                               const std::vector<Column>& columns) {
  Term term;
  term.text = token;
  for (size_t c = 0; c < columns.size(); ++c) {
    if (columns[c].path == token) {
      term.kind = Term::kColumn;
      term.column = static_cast<int>(c);
      return term;
    }
  }
  if (ParseNumber(token, &term.number)) {
    term.kind = Term::kNumber;
    return term;
  }
  if (token.front() == '\'' || token.front() == '"') {
    term.kind = Term::kText;
    term.text = token.substr(1, token.size() - 2);
    return term;
  }
  // A bare word with a dot or a slash is a field path or a file, never an
  // enum name: a misspelt path must not silently compare as text.
  if (absl::StrContains(token, ".") || absl::StrContains(token, "/")) {
    std::vector<std::string> swept;
    for (const Column& column : columns) swept.push_back(column.path);
    return absl::InvalidArgumentError(
        absl::StrCat("'", token, "' is not a swept field (swept: ",
                     swept.empty() ? "none" : absl::StrJoin(swept, ", "),
                     "); quote text to compare with it"));
  }
  term.kind = Term::kText;
  return term;
}

absl::StatusOr<Condition> ParseCondition(const std::string& text,
                                         const std::vector<Column>& columns) {
  SHARDSIM_ASSIGN_OR_RETURN(std::vector<std::string> tokens, Tokenize(text));
  Condition condition;
  condition.text = text;
  Side* side = &condition.left;
  bool have_op = false;
  bool want_term = true;
  for (const std::string& token : tokens) {
    Op op;
    if (IsOperator(token, &op)) {
      if (have_op || want_term) {
        return absl::InvalidArgumentError(absl::StrCat(
            "expected LEFT OP RIGHT (OP one of == != < <= > >=), got '", text,
            "'"));
      }
      condition.op = op;
      have_op = true;
      side = &condition.right;
      want_term = true;
    } else if (token == "*") {
      if (want_term) {
        return absl::InvalidArgumentError(
            absl::StrCat("'*' needs a term on each side in '", text, "'"));
      }
      want_term = true;
    } else if (token == "=" || token == "!") {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown operator '", token, "' in '", text,
                       "' (one of == != < <= > >=)"));
    } else {
      if (!want_term) {
        return absl::InvalidArgumentError(
            absl::StrCat("expected an operator or '*' before '", token,
                         "' in '", text, "'"));
      }
      SHARDSIM_ASSIGN_OR_RETURN(Term term, ParseTerm(token, columns));
      side->terms.push_back(std::move(term));
      want_term = false;
    }
  }
  if (!have_op || want_term) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected LEFT OP RIGHT (OP one of == != < <= > >=), got '", text,
        "'"));
  }
  for (const Side* s : {&condition.left, &condition.right}) {
    if (s->terms.size() < 2) continue;
    for (const Term& term : s->terms) {
      if (term.kind == Term::kText) {
        return absl::InvalidArgumentError(absl::StrCat(
            "'", term.text,
            "' in a product is neither a number nor a swept field"));
      }
    }
  }
  return condition;
}

struct Value {
  bool numeric = false;
  double number = 0;
  std::string text;
};

absl::StatusOr<Value> Evaluate(const Side& side,
                               const std::vector<Column>& columns,
                               const std::vector<std::string>& values) {
  Value v;
  if (side.terms.size() == 1) {
    const Term& term = side.terms[0];
    v.text = term.kind == Term::kColumn
                 ? values[static_cast<size_t>(term.column)]
                 : term.text;
    v.numeric = term.kind != Term::kText && ParseNumber(v.text, &v.number);
    return v;
  }
  v.numeric = true;
  v.number = 1;
  for (const Term& term : side.terms) {
    double factor = term.number;
    if (term.kind == Term::kColumn) {
      const std::string& value = values[static_cast<size_t>(term.column)];
      if (!ParseNumber(value, &factor)) {
        return absl::InvalidArgumentError(absl::StrCat(
            columns[static_cast<size_t>(term.column)].path, " = '", value,
            "' is not a number, so it cannot be multiplied"));
      }
    }
    v.number *= factor;
  }
  v.text = absl::StrCat(v.number);
  return v;
}

absl::StatusOr<bool> Holds(const Condition& c,
                           const std::vector<Column>& columns,
                           const std::vector<std::string>& values) {
  SHARDSIM_ASSIGN_OR_RETURN(Value left, Evaluate(c.left, columns, values));
  SHARDSIM_ASSIGN_OR_RETURN(Value right, Evaluate(c.right, columns, values));
  if (left.numeric && right.numeric) {
    switch (c.op) {
      case Op::kEq:
        return left.number == right.number;
      case Op::kNe:
        return left.number != right.number;
      case Op::kLt:
        return left.number < right.number;
      case Op::kLe:
        return left.number <= right.number;
      case Op::kGt:
        return left.number > right.number;
      case Op::kGe:
        return left.number >= right.number;
    }
  }
  if (c.op == Op::kEq) return left.text == right.text;
  if (c.op == Op::kNe) return left.text != right.text;
  return absl::InvalidArgumentError(
      absl::StrCat("'", left.text, "' and '", right.text,
                   "' are not both numbers; only == and != compare text"));
}

std::string FileStem(const std::string& path) {
  std::string stem = path.substr(path.rfind('/') + 1);  // npos + 1 == 0
  const size_t dot = stem.find('.');
  if (dot != std::string::npos && dot > 0) stem.resize(dot);
  return stem;
}

}  // namespace

std::vector<std::string> SweepSpec::Overrides(const SweepPoint& point) const {
  std::vector<std::string> overrides(sweep.set().begin(), sweep.set().end());
  for (size_t c = 0; c < columns.size(); ++c) {
    overrides.push_back(absl::StrCat(columns[c], "=", point.values[c]));
  }
  return overrides;
}

absl::StatusOr<SweepSpec> LoadSweep(const std::string& path) {
  SweepSpec spec;
  spec.path = path;
  SHARDSIM_RETURN_IF_ERROR(LoadTextProto(path, &spec.sweep, &spec.where));
  const v1::Sweep& sweep = spec.sweep;
  const FieldLocator& where = spec.where;
  spec.name = sweep.name().empty() ? FileStem(path) : sweep.name();
  if (sweep.base_scenario().empty()) {
    return where.Error("base_scenario", "missing: name the scenario to sweep");
  }
  spec.base_scenario = ResolveRelative(path, sweep.base_scenario());

  // The base as written, to try every override on before anything runs.
  v1::Scenario base;
  {
    FieldLocator ignored;
    const absl::Status status =
        LoadTextProto(spec.base_scenario, &base, &ignored);
    if (!status.ok()) return where.Error("base_scenario", status.message());
  }
  std::map<std::string, std::string> seen;  // path -> sweep field using it
  for (int i = 0; i < sweep.set_size(); ++i) {
    const std::string field = absl::StrCat("set[", i, "]");
    absl::StatusOr<Override> o = ParseOverride(sweep.set(i));
    if (!o.ok()) return where.Error(field, o.status().message());
    const absl::Status status = ApplyOverride(*o, &base);
    if (!status.ok()) return where.Error(field, WithoutSetPrefix(status, *o));
    if (!seen.emplace(o->path, field).second) {
      return where.Error(
          field, absl::StrCat(o->path, " is already set by ", seen[o->path]));
    }
  }

  // Dimensions of the product, in the order the file writes them (the
  // parsed message keeps axes and zipped groups apart, so ask the parser
  // where each one was).
  struct Dimension {
    int axis = -1;           // an index into sweep.axes, or
    int group = -1;          // an index into sweep.zipped
    std::pair<int, int> at;  // line, column in the file
    std::vector<size_t> columns;
    int64_t size = 0;
  };
  std::vector<Dimension> dimensions;
  {
    std::string text;
    SHARDSIM_RETURN_IF_ERROR(ReadFile(path, &text));
    google::protobuf::TextFormat::Parser parser;
    google::protobuf::TextFormat::ParseInfoTree tree;
    parser.WriteLocationsTo(&tree);
    v1::Sweep again;
    parser.ParseFromString(text, &again);  // parsed once already: no errors
    const google::protobuf::Descriptor* d = v1::Sweep::descriptor();
    for (int i = 0; i < sweep.axes_size(); ++i) {
      const auto at = tree.GetLocation(d->FindFieldByName("axes"), i);
      dimensions.push_back({i, -1, {at.line, at.column}, {}, 0});
    }
    for (int g = 0; g < sweep.zipped_size(); ++g) {
      const auto at = tree.GetLocation(d->FindFieldByName("zipped"), g);
      dimensions.push_back({-1, g, {at.line, at.column}, {}, 0});
    }
    std::stable_sort(
        dimensions.begin(), dimensions.end(),
        [](const Dimension& a, const Dimension& b) { return a.at < b.at; });
  }
  std::vector<Column> columns;
  for (Dimension& dimension : dimensions) {
    if (dimension.axis >= 0) {
      const int i = dimension.axis;
      columns.push_back({sweep.axes(i).path(), absl::StrCat("axes[", i, "]"),
                         &sweep.axes(i)});
      dimension.columns.push_back(columns.size() - 1);
      dimension.size = sweep.axes(i).values_size();
      continue;
    }
    const int g = dimension.group;
    const v1::ZippedAxes& group = sweep.zipped(g);
    if (group.axes().empty()) {
      return where.Error(absl::StrCat("zipped[", g, "]"),
                         "a zipped group needs at least one axis");
    }
    dimension.size = group.axes(0).values_size();
    for (int k = 0; k < group.axes_size(); ++k) {
      const std::string field = absl::StrCat("zipped[", g, "].axes[", k, "]");
      if (group.axes(k).values_size() != dimension.size) {
        return where.Error(
            absl::StrCat(field, ".values"),
            absl::StrCat("has ", group.axes(k).values_size(),
                         " values but zipped[", g, "].axes[0] has ",
                         dimension.size, "; zipped axes move together"));
      }
      columns.push_back({group.axes(k).path(), field, &group.axes(k)});
      dimension.columns.push_back(columns.size() - 1);
    }
    // Two equal positions would be two points with one key.
    std::set<std::vector<std::string>> tuples;
    for (int i = 0; i < dimension.size; ++i) {
      std::vector<std::string> tuple;
      for (const v1::Axis& axis : group.axes()) tuple.push_back(axis.values(i));
      if (!tuples.insert(tuple).second) {
        return where.Error(absl::StrCat("zipped[", g, "].axes[0].values[", i, "]"),
                           "repeats an earlier position of this zipped group");
      }
    }
  }
  for (const Column& column : columns) {
    SHARDSIM_RETURN_IF_ERROR(CheckAxis(column, base, where));
    const std::string path_field = absl::StrCat(column.field, ".path");
    if (!seen.emplace(column.path, path_field).second) {
      return where.Error(path_field,
                         absl::StrCat(column.path, " is already ",
                                      "swept or set by ", seen[column.path]));
    }
    spec.columns.push_back(column.path);
  }

  // The base must stand on its own, so that a missing model file is one
  // error now rather than the same skip reason on every point.
  {
    std::vector<std::string> set(sweep.set().begin(), sweep.set().end());
    absl::StatusOr<LoadedScenario> loaded = LoadScenario(spec.base_scenario, set);
    if (!loaded.ok()) return where.Error("base_scenario", loaded.status().message());
    // A serve sweep's points run the base's serving block: without one
    // every point would fail the same way.
    if (sweep.command() == v1::Sweep::SERVE) {
      if (!loaded->scenario.has_serving()) {
        return where.Error(
            "command", absl::StrCat("SERVE, but ", sweep.base_scenario(),
                                    " has no serving block to run"));
      }
      const absl::Status status =
          serving::CheckServing(loaded->scenario.serving(), loaded->where);
      if (!status.ok()) return where.Error("base_scenario", status.message());
    }
  }

  std::vector<Rule> rules;
  for (int i = 0; i < sweep.skip_size(); ++i) {
    Rule rule;
    rule.reason = sweep.skip(i).reason();
    if (rule.reason.empty()) {
      return where.Error(absl::StrCat("skip[", i, "].reason"),
                         "missing: say why these points are skipped");
    }
    if (sweep.skip(i).when().empty()) {
      return where.Error(absl::StrCat("skip[", i, "].when"),
                         "missing: a rule needs at least one condition");
    }
    for (int j = 0; j < sweep.skip(i).when_size(); ++j) {
      const std::string field = absl::StrCat("skip[", i, "].when[", j, "]");
      absl::StatusOr<Condition> condition =
          ParseCondition(sweep.skip(i).when(j), columns);
      if (!condition.ok())
        return where.Error(field, condition.status().message());
      condition->field = field;
      rule.conditions.push_back(*std::move(condition));
    }
    rules.push_back(std::move(rule));
  }

  int64_t total = 1;
  for (const Dimension& d : dimensions) {
    if (total > kMaxSweepPoints / d.size) {
      return where.Error(
          "axes", absl::StrCat("more than ", kMaxSweepPoints,
                               " points; split the sweep into several files"));
    }
    total *= d.size;
  }
  spec.points.reserve(static_cast<size_t>(total));
  for (int64_t index = 0; index < total; ++index) {
    SweepPoint point;
    point.index = index;
    point.values.resize(columns.size());
    // Mixed radix with the last dimension varying fastest.
    int64_t rest = index;
    for (size_t d = dimensions.size(); d-- > 0;) {
      const int position = static_cast<int>(rest % dimensions[d].size);
      rest /= dimensions[d].size;
      for (size_t c : dimensions[d].columns) {
        point.values[c] = columns[c].axis->values(position);
      }
    }
    std::vector<std::string> parts;
    for (size_t c = 0; c < columns.size(); ++c) {
      parts.push_back(absl::StrCat(columns[c].path, "=", point.values[c]));
    }
    point.key = absl::StrJoin(parts, ";");
    for (const Rule& rule : rules) {
      bool all = true;
      for (const Condition& condition : rule.conditions) {
        absl::StatusOr<bool> holds = Holds(condition, columns, point.values);
        if (!holds.ok()) {
          return where.Error(condition.field,
                             absl::StrCat(holds.status().message(),
                                          " (at point ", point.key, ")"));
        }
        if (!*holds) {
          all = false;
          break;
        }
      }
      if (all) {
        point.skip_reason = rule.reason;
        ++spec.skipped_by_rules;
        break;
      }
    }
    spec.points.push_back(std::move(point));
  }
  return spec;
}

}  // namespace shardsim::scenario
