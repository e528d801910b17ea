// The message of the pf::Error that f throws; a test failure when it throws none.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "base/error.h"

namespace pf::test {

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a pf::Error";
  return "";
}

}  // namespace pf::test
