// Remote lambdas (SPEC 4.1): each batch of rows is one HTTP PUT of a JSON array of rows to a
// URL, answered by a JSON array holding one array of output documents per row. One HTTP
// session per lambda (http/client.h) keeps its connection alive between batches. A
// RemoteLambda is used by one thread.
#pragma once

#include <memory>
#include <string>

#include "lambda/lambda.h"

namespace flow::lambda {

class RemoteLambda final : public Lambda {
 public:
  // A lambda calling `url` (http or https). `publish` selects the row shape sent:
  // `[source, previous, register]` for publish lambdas, `[source]` for update lambdas.
  // Nothing is contacted before the first Invoke. `timeout` bounds each request, from
  // connecting to the end of the response.
  static std::unique_ptr<Lambda> Make(std::string url, bool publish,
                                      std::chrono::milliseconds timeout = kDefaultTimeout);

  // A bootstrap lambda calling `url`: each row is sent as `[]` (no arguments; one Invoke of
  // one row sends `[[]]`); any 2xx status succeeds and the response body is ignored (each
  // row outputs no documents). Other statuses and connection errors as for Make's lambdas.
  static std::unique_ptr<Lambda> MakeBootstrap(std::string url,
                                               std::chrono::milliseconds timeout = kDefaultTimeout);

  ~RemoteLambda() override;

  // Sends the rows as one request (an empty batch sends nothing), with a connect timeout of
  // 10 s (or the lambda timeout, if shorter) and the lambda timeout for the whole request. A
  // server that accepted the connection but did not answer in time is a user error (the
  // lambda timed out); a stop request aborts the request (an environment error). A non-2xx
  // status, a response that is not JSON (responses may exceed the usual
  // 16 MiB document limit, up to 1 GiB), not an array, of the wrong length, or whose element
  // for a row is not an array are user errors; an unreachable or failing connection is an
  // environment error naming the URL.
  Result<bool> Invoke(const std::vector<Row>& rows, doc::Allocator& alloc, Outputs* out,
                      int* failed_row = nullptr) override;

 private:
  struct Impl;
  explicit RemoteLambda(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flow::lambda
