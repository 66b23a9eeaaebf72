#include "lambda/remote.h"

#include <algorithm>
#include <string_view>

#include <curl/curl.h>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "base/strings.h"
#include "doc/parse.h"
#include "doc/value.h"

namespace flow::lambda {
namespace {

constexpr long kConnectTimeout = 10000;            // milliseconds, at most the lambda timeout
constexpr size_t kMaxResponse = size_t{1} << 30;   // bytes: a batch's outputs, not one document
constexpr size_t kMaxBodyInError = 500;            // bytes of a failed response quoted in errors

}  // namespace

struct RemoteLambda::Impl {
  std::string url;
  bool publish = false;
  bool bootstrap = false;
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
  rapidjson::StringBuffer request;  // reused between batches
  std::string response;             // reused between batches
  bool response_too_big = false;
  std::chrono::milliseconds timeout = kDefaultTimeout;  // per request
  char errbuf[CURL_ERROR_SIZE] = {0};

  ~Impl() {
    curl_slist_free_all(headers);
    if (curl) curl_easy_cleanup(curl);
  }

  static size_t Write(char* data, size_t size, size_t n, void* user) {
    auto* self = static_cast<Impl*>(user);
    if (self->response.size() + size * n > kMaxResponse) {
      self->response_too_big = true;
      return 0;  // aborts the transfer
    }
    self->response.append(data, size * n);
    return size * n;
  }

  // libcurl's progress callback (at least once a second): a stop request aborts the request.
  static int Progress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) { return StopRequested() ? 1 : 0; }

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

std::unique_ptr<Lambda> RemoteLambda::Make(std::string url, bool publish, std::chrono::milliseconds timeout) {
  // Thread-safe since libcurl 7.84; a no-op after the first call.
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  auto impl = std::make_unique<Impl>();
  impl->url = std::move(url);
  impl->publish = publish;
  impl->timeout = timeout;
  CURL* curl = initialised ? curl_easy_init() : nullptr;
  impl->curl = curl;
  if (curl) {
    impl->headers = curl_slist_append(impl->headers, "Content-Type: application/json");
    impl->headers = curl_slist_append(impl->headers, "Accept: application/json");
    // No "Expect: 100-continue" round trip before large bodies.
    impl->headers = curl_slist_append(impl->headers, "Expect:");
    curl_easy_setopt(curl, CURLOPT_URL, impl->url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, impl->headers);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, std::min<long>(kConnectTimeout, static_cast<long>(timeout.count())));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &Impl::Progress);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Impl::Write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, impl.get());
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, impl->errbuf);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "flowctl");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    // Accept compressed responses (outputs can be large).
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  }
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
  if (!m.curl) return Error::Env(fmt::format("remote lambda {}: cannot initialise libcurl", m.url));

  // The body: [[source], ...] or [[source, previous, register], ...] ([[], ...] for a
  // bootstrap); absent documents are null.
  m.request.Clear();
  {
    rapidjson::Writer<rapidjson::StringBuffer> w(m.request);
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
  curl_easy_setopt(m.curl, CURLOPT_POSTFIELDS, m.request.GetString());
  curl_easy_setopt(m.curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(m.request.GetSize()));

  m.response.clear();
  m.response_too_big = false;
  m.errbuf[0] = 0;
  CURLcode rc = curl_easy_perform(m.curl);
  if (m.response_too_big) {
    return m.UserError(fmt::format("answered more than {} MiB", kMaxResponse >> 20));
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK) return StoppedError();
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    // Connected but no (complete) answer in time: the lambda's fault, like a nodeJS lambda
    // that never returns. Not even connected: the server is unreachable.
    curl_off_t connected = 0;
    curl_easy_getinfo(m.curl, CURLINFO_CONNECT_TIME_T, &connected);
    if (connected > 0) {
      return m.UserError(fmt::format(
          "did not answer within {} (the lambda timeout; set `lambdaTimeout` to allow longer)",
          DescribeTimeout(m.timeout)));
    }
  }
  if (rc != CURLE_OK) {
    return Error::Env(fmt::format("remote lambda {}: {}", m.url, m.errbuf[0] ? m.errbuf : curl_easy_strerror(rc)));
  }
  long status = 0;
  curl_easy_getinfo(m.curl, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) {
    return m.UserError(fmt::format("answered HTTP {}: {}", status, Truncate(m.response, kMaxBodyInError)));
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
  if (!doc::ParseTerminatedDocument(m.response, &parsed, &error, limits)) {
    return m.UserError(fmt::format("answered malformed JSON: {} at byte {} of {}", error.message, error.offset,
                                   Truncate(m.response, kMaxBodyInError)));
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
