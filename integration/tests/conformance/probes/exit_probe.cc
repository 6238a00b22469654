// A C++ filter of the project's own, built with the C++ SDK like the SDK's examples: a request
// with `x-exit: N` makes it call exit(N) (WASI's proc_exit underneath), one with `x-abort`
// abort(), `x-fd: seek` or `x-fd: close` the WASI file calls a host only pretends to serve; any
// other request passes with a log line. What the host does then (log, fail the VM, answer) is
// compared with Envoy's.

#include <cstdlib>
#include <unistd.h>
#include <string>
#include <string_view>

#include "proxy_wasm_intrinsics.h"

class ExitProbe : public Context {
public:
  explicit ExitProbe(uint32_t id, RootContext *root) : Context(id, root) {}

  FilterHeadersStatus onRequestHeaders(uint32_t, bool) override {
    auto code = getRequestHeader("x-exit");
    if (!code->view().empty()) {
      LOG_INFO(std::string("exiting with ") + std::string(code->view()));
      exit(std::atoi(std::string(code->view()).c_str()));
    }
    if (!getRequestHeader("x-abort")->view().empty()) {
      LOG_INFO("aborting");
      abort();
    }
    auto fd = getRequestHeader("x-fd");
    if (fd->view() == "seek") {
      LOG_INFO(std::string("seek: ") + std::to_string(lseek(1, 0, SEEK_CUR)));
    } else if (fd->view() == "close") {
      LOG_INFO(std::string("close: ") + std::to_string(close(100)));
    }
    LOG_INFO("passing");
    return FilterHeadersStatus::Continue;
  }
};

static RegisterContextFactory register_ExitProbe(CONTEXT_FACTORY(ExitProbe));
