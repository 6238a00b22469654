// A C++ filter of the project's own, built with the C++ SDK like the SDK's examples, that makes
// its libc ask the host for what C++ modules' libcs ask: a request with `x-grow: N` allocates and
// touches N MiB (memory.grow, and Emscripten's emscripten_notify_memory_growth), `x-fd: seek` or
// `x-fd: close` the WASI file calls a host only pretends to serve, `x-exit: N` calls exit(N)
// (WASI's proc_exit underneath), `x-abort` abort(); every request that comes back logs
// "passing". What the host does (log, fail the VM, answer) is compared with Envoy's.

#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <string>
#include <string_view>

#include "proxy_wasm_intrinsics.h"

class LibcProbe : public Context {
public:
  explicit LibcProbe(uint32_t id, RootContext *root) : Context(id, root) {}

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
    auto grow = getRequestHeader("x-grow");
    if (!grow->view().empty()) {
      size_t bytes = size_t(std::atoi(std::string(grow->view()).c_str())) << 20;
      char *block = static_cast<char *>(malloc(bytes));
      if (block == nullptr) {
        LOG_INFO("no memory");
      } else {
        memset(block, 1, bytes);
        LOG_INFO(std::string("grew by ") + std::string(grow->view()) + " MiB, sum " +
                 std::to_string(block[0] + block[bytes - 1]));
        free(block);
      }
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

static RegisterContextFactory register_LibcProbe(CONTEXT_FACTORY(LibcProbe));
