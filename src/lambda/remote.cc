#include "lambda/remote.h"

#include <algorithm>
#include <string_view>

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "base/strings.h"
#include "doc/parse.h"
#include "doc/value.h"
#include "http/client.h"

namespace flow::lambda {
namespace {

constexpr std::chrono::milliseconds kConnectTimeout{10000};  // at most the lambda timeout
constexpr size_t kMaxResponse = size_t{1} << 30;   // bytes: a batch's outputs, not one document
constexpr size_t kMaxBodyInError = 500;            // bytes of a failed response quoted in errors

}  // namespace

struct RemoteLambda::Impl {
  std::string url;
  bool publish = false;
  bool bootstrap = false;
  http::Session session;         // keeps its connection alive between batches
  http::Request request;         // the same for every batch but its body
  rapidjson::StringBuffer body;  // reused between batches
  http::Response response;       // reused between batches
  std::chrono::milliseconds timeout = kDefaultTimeout;  // per request

  Error UserError(std::string_view what) const {
    return Error::User(fmt::format("remote lambda {} {}", url, what));
  }
};

namespace {

// "an object", "a string", ...
std::string Kind(const doc::Value& v) {
  std::string_view k = doc::KindName(v);
  bool vowel = k[0] == 'a' || k[0] == 'e' || k[0] == 'i' || k[0] == 'o' || k[0] == 'u';
  return fmt::format("{} {}", vowel ? "an" : "a", k);
}

}  // namespace

RemoteLambda::RemoteLambda(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RemoteLambda::~RemoteLambda() = default;

std::unique_ptr<Lambda> RemoteLambda::Make(std::string url, bool publish,
                                           std::chrono::milliseconds timeout) {
  auto impl = std::make_unique<Impl>();
  impl->url = std::move(url);
  impl->publish = publish;
  impl->timeout = timeout;
  http::Request& r = impl->request;
  r.method = "PUT";
  r.url = impl->url;
  // No "Expect: 100-continue" round trip before large bodies.
  r.headers = {"Content-Type: application/json", "Accept: application/json", "Expect:"};
  r.connect_timeout = std::min(kConnectTimeout, timeout);
  r.timeout = timeout;
  r.max_response_bytes = kMaxResponse;
  r.accept_compressed = true;  // outputs can be large
  r.cancelled = [] { return StopRequested(); };
  return std::unique_ptr<Lambda>(new RemoteLambda(std::move(impl)));
}

std::unique_ptr<Lambda> RemoteLambda::MakeBootstrap(std::string url, std::chrono::milliseconds timeout) {
  auto l = Make(std::move(url), false, timeout);
  static_cast<RemoteLambda&>(*l).impl_->bootstrap = true;
  return l;
}

Result<bool> RemoteLambda::Invoke(const std::vector<Row>& rows, doc::Allocator& alloc, Outputs* out,
                                  int* failed_row) {
  Impl& m = *impl_;
  out->clear();
  if (failed_row) *failed_row = -1;
  if (rows.empty()) return true;
  if (StopRequested()) return StoppedError();

  // The body: [[source], ...] or [[source, previous, register], ...] ([[], ...] for a
  // bootstrap); absent documents are null.
  m.body.Clear();
  {
    rapidjson::Writer<rapidjson::StringBuffer> w(m.body);
    auto write = [&w](const doc::Value* v) {
      if (v) {
        v->Accept(w);
      } else {
        w.Null();
      }
    };
    w.StartArray();
    for (const Row& row : rows) {
      w.StartArray();
      if (!m.bootstrap) write(row.source);
      if (m.publish) {
        write(row.previous);
        write(row.register_value);
      }
      w.EndArray();
    }
    w.EndArray();
  }
  m.request.body = std::string_view(m.body.GetString(), m.body.GetSize());

  http::Failure failure;
  auto done = m.session.Perform(m.request, &m.response, &failure);
  if (!done) {
    switch (failure.kind) {
      case http::Failure::Kind::kTooLarge:
        return m.UserError(fmt::format("answered more than {} MiB", kMaxResponse >> 20));
      case http::Failure::Kind::kCancelled:
        return StoppedError();
      case http::Failure::Kind::kTimedOut:
        // Connected but no (complete) answer in time: the lambda's fault, like a nodeJS
        // lambda that never returns. Not even connected: the server is unreachable.
        if (failure.connected) {
          return m.UserError(fmt::format(
              "did not answer within {} (the lambda timeout; set `lambdaTimeout` to allow longer)",
              DescribeTimeout(m.timeout)));
        }
        break;
      case http::Failure::Kind::kOther:
        break;
    }
    return Error::Env(fmt::format("remote lambda {}: {}", m.url, done.error().message));
  }
  long status = m.response.status;
  const std::string& response = m.response.body;
  if (status < 200 || status > 299) {
    return m.UserError(
        fmt::format("answered HTTP {}: {}", status, Truncate(response, kMaxBodyInError)));
  }

  if (m.bootstrap) {  // what a bootstrap answers is not looked at
    out->resize(rows.size());
    return true;
  }

  // Values are parsed straight into `alloc` and moved out: no copy.
  rapidjson::Document parsed(&alloc);
  doc::ParseError error;
  doc::ParseLimits limits;
  limits.max_bytes = kMaxResponse;
  // std::string is NUL-terminated, which allows RapidJSON's faster scanning.
  if (!doc::ParseTerminatedDocument(response, &parsed, &error, limits)) {
    return m.UserError(fmt::format("answered malformed JSON: {} at byte {} of {}", error.message,
                                   error.offset, Truncate(response, kMaxBodyInError)));
  }
  if (!parsed.IsArray()) {
    return m.UserError(
        fmt::format("answered {}, not an array holding an array of output documents per row", Kind(parsed)));
  }
  if (parsed.Size() != rows.size()) {
    return m.UserError(fmt::format("answered an array of {} elements for {} rows: it must hold one array of "
                                   "output documents per row",
                                   parsed.Size(), rows.size()));
  }
  for (rapidjson::SizeType i = 0; i < parsed.Size(); ++i) {
    if (!parsed[i].IsArray()) {
      if (failed_row) *failed_row = static_cast<int>(i);
      return m.UserError(
          fmt::format("answered {} for row {}, not an array of output documents", Kind(parsed[i]), i));
    }
  }
  out->resize(rows.size());
  for (rapidjson::SizeType i = 0; i < parsed.Size(); ++i) {
    auto& docs = (*out)[i];
    docs.reserve(parsed[i].Size());
    for (auto& d : parsed[i].GetArray()) docs.push_back(std::move(d));
  }
  return true;
}

}  // namespace flow::lambda
