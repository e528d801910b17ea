// An error that becomes an HTTP response: its status, an OpenAI-style type, and a message
// that names the problem.
#pragma once
#include <string>

#include "base/error.h"

namespace pf {

class HttpError : public Error {
 public:
  HttpError(int status, std::string type, const std::string& msg)
      : Error(msg), status_(status), type_(std::move(type)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }

 private:
  int status_;
  std::string type_;
};

template <typename... Args>
[[noreturn]] void http_fail(int status, const Args&... args) {
  std::ostringstream os;
  detail::append(os, args...);
  const char* type = status == 400   ? "invalid_request_error"
                     : status == 401 ? "authentication_error"
                     : status == 404 ? "not_found_error"
                     : status == 409 ? "conflict_error"
                     : status == 503 ? "overloaded_error"
                     : status == 504 ? "timeout_error"
                                     : "server_error";
  throw HttpError(status, type, os.str());
}

}  // namespace pf
