#include "runtime/combine.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <cerrno>
#include <cstring>

#include "base/strings.h"
#include "doc/parse.h"
#include "doc/value.h"

namespace flow::runtime {

Result<CombineResult> CombineInput(const std::shared_ptr<const Collection>& collection,
                                   Input& input, const reduce::CombinerOptions& options,
                                   bool combined_only, const CombineProgress& progress,
                                   const std::function<Result<bool>(std::string_view line)>& sink,
                                   std::string* error_where) {
  const Collection& c = *collection;
  const std::string& name = input.name();
  error_where->clear();
  reduce::Combiner combiner(c.reducer, c.key, options);
  rapidjson::Document parsed(&combiner.scratch());
  LineReader lines(input.file());
  std::string_view line;
  CombineResult out;
  auto at = [&](std::string where, Error e) {
    *error_where = std::move(where);
    return e;
  };
  while (lines.Next(&line)) {
    if (BlankLine(line)) continue;
    doc::ParseError perr;
    if (!doc::ParseTerminatedDocument(line, &parsed, &perr)) {
      return at(fmt::format("{}:{}:{}", name, lines.number(), perr.offset + 1),
                Error::User(perr.message));
    }
    auto valid = c.Validate(parsed, combiner.scratch());
    if (!valid)
      return at(fmt::format("{}:{}", name, lines.number()), Error::User(valid.error().message));
    auto added = combiner.AddScratch(parsed);
    if (!added) {
      if (added.error().code != Error::Code::kUser) return added.error();
      return at(fmt::format("{}:{}", name, lines.number()),
                Error::User(fmt::format("cannot reduce into collection `{}`: {}", c.name,
                                        added.error().message)));
    }
    ++out.documents;
    if (progress && (out.documents & 0xffff) == 0) progress(out.documents, lines.bytes(), false);
  }
  if (lines.too_long())
    return at(fmt::format("{}:{}", name, lines.number()), Error::User(lines.TooLongMessage()));
  if (lines.failed())
    return Error::User(fmt::format("cannot read {}: {}", name, std::strerror(errno)));
  if (progress) progress(out.documents, lines.bytes(), true);

  std::string json;
  auto drained =
      combiner.Drain(!combined_only, [&](std::string_view, doc::Value& d) -> Result<bool> {
        json.clear();
        doc::AppendJson(d, &json);
        ++out.keys;
        return sink(json);
      });
  if (!drained)
    return Error{drained.error().code,
                 fmt::format("collection `{}`: {}", c.name, drained.error().message)};
  out.combiner = combiner.stats();
  return out;
}

}  // namespace flow::runtime
