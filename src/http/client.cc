#include "http/client.h"

#include <curl/curl.h>

namespace flow::http {

struct Session::Impl {
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
  char errbuf[CURL_ERROR_SIZE] = {0};
  // Of the request being performed.
  const Request* request = nullptr;
  Response* out = nullptr;
  bool too_big = false;

  ~Impl() {
    curl_slist_free_all(headers);
    if (curl) curl_easy_cleanup(curl);
  }

  static size_t Write(char* data, size_t size, size_t n, void* user) {
    auto* self = static_cast<Impl*>(user);
    size_t limit = self->request->max_response_bytes;
    if (limit && self->out->body.size() + size * n > limit) {
      self->too_big = true;
      return 0;  // ends the transfer
    }
    self->out->body.append(data, size * n);
    return size * n;
  }

  static int Progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<Impl*>(user)->request->cancelled() ? 1 : 0;
  }
};

Session::Session() : impl_(std::make_unique<Impl>()) {
  // Thread-safe since libcurl 7.84; a no-op after the first call.
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (initialised) impl_->curl = curl_easy_init();
}

Session::~Session() = default;

Result<bool> Session::Perform(const Request& request, Response* out, Failure* failure) {
  Impl& m = *impl_;
  out->status = 0;
  out->body.clear();
  if (!m.curl) {
    if (failure) *failure = Failure{Failure::Kind::kOther, false, "cannot initialise libcurl"};
    return Error::Env("cannot initialise libcurl");
  }
  CURL* curl = m.curl;
  m.request = &request;
  m.out = out;
  m.too_big = false;
  m.errbuf[0] = 0;

  // Every option is set on every request, so that nothing is left over from the last one.
  curl_slist_free_all(m.headers);
  m.headers = nullptr;
  for (const auto& h : request.headers) m.headers = curl_slist_append(m.headers, h.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, nullptr);
  } else {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, m.headers);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, request.max_redirects > 0 ? 1L : 0L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, request.max_redirects);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  // Refused up front when the server announces the size; Write stops the others.
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
                   static_cast<curl_off_t>(request.max_response_bytes));
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, request.accept_compressed ? "" : nullptr);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, request.cancelled ? 0L : 1L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &Impl::Progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &m);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Impl::Write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &m);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, m.errbuf);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "flowctl");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);

  CURLcode rc = curl_easy_perform(curl);
  m.request = nullptr;
  m.out = nullptr;
  if (rc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    return true;
  }
  Failure f;
  f.summary = curl_easy_strerror(rc);
  if (m.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
    f.kind = Failure::Kind::kTooLarge;
  } else if (rc == CURLE_ABORTED_BY_CALLBACK) {
    f.kind = Failure::Kind::kCancelled;
  } else if (rc == CURLE_OPERATION_TIMEDOUT) {
    f.kind = Failure::Kind::kTimedOut;
  }
  curl_off_t connected = 0;
  curl_easy_getinfo(curl, CURLINFO_CONNECT_TIME_T, &connected);
  f.connected = connected > 0;
  std::string message = m.errbuf[0] ? std::string(m.errbuf) : f.summary;
  if (failure) *failure = std::move(f);
  return Error::Env(std::move(message));
}

Result<Response> Perform(const Request& request, Failure* failure) {
  Session session;
  Response response;
  auto done = session.Perform(request, &response, failure);
  if (!done) return done.error();
  return response;
}

}  // namespace flow::http
