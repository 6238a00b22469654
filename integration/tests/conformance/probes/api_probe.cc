// A C++ filter of the project's own, built with the C++ SDK like the SDK's examples, that calls
// the SDK's API the ways filters do (and a few ways they should not) and logs every result:
// properties (as bytes), headers, shared data and queues, metrics, buffers, callouts to clusters
// that do not exist, and a local reply. Digits are masked when the logs are compared, so times,
// ports and ids may differ; names, sizes of strings, statuses and order may not.

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "proxy_wasm_intrinsics.h"

namespace {

// Bytes as text: printable ASCII as is, the rest as \xHH.
std::string shown(std::string_view bytes) {
  static const char *hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

void property(const std::vector<std::string_view> &path) {
  std::string name;
  for (auto p : path) {
    name += name.empty() ? "" : ".";
    name += p;
  }
  auto value = getProperty(path);
  if (!value.has_value()) {
    LOG_INFO("property " + name + ": none");
    return;
  }
  auto bytes = value.value()->view();
  if (bytes.size() == 8) {
    // Numbers (sizes, ports, codes, times) as numbers: their digits are masked when compared.
    int64_t n = 0;
    memcpy(&n, bytes.data(), 8);
    LOG_INFO("property " + name + ": 8 bytes, as int64 " + std::to_string(n));
    return;
  }
  LOG_INFO("property " + name + ": " + std::to_string(bytes.size()) + " bytes [" + shown(bytes) + "]");
}

void said(const std::string &what, WasmResult r) { LOG_INFO(what + ": " + toString(r)); }

} // namespace

class ApiRoot : public RootContext {
public:
  explicit ApiRoot(uint32_t id, std::string_view root_id) : RootContext(id, root_id) {}

  bool onConfigure(size_t size) override {
    auto config = getBufferBytes(WasmBufferType::PluginConfiguration, 0, size);
    LOG_INFO("configuration: " + shown(config->view()));
    property({"plugin_name"});
    property({"plugin_root_id"});
    property({"plugin_vm_id"});
    return true;
  }
};

class ApiProbe : public Context {
public:
  explicit ApiProbe(uint32_t id, RootContext *root) : Context(id, root) {}

  FilterHeadersStatus onRequestHeaders(uint32_t headers, bool end_of_stream) override {
    LOG_INFO("request headers: " + std::to_string(headers) + (end_of_stream ? " end" : " more"));
    for (auto path : std::vector<std::vector<std::string_view>>{
             {"request", "path"},      {"request", "url_path"},    {"request", "host"},
             {"request", "scheme"},    {"request", "method"},      {"request", "protocol"},
             {"request", "query"},     {"request", "referer"},     {"request", "useragent"},
             {"request", "headers", "x-probe"},                    {"request", "headers", "nope"},
             {"request", "size"},      {"request", "total_size"},  {"request", "duration"},
             {"source", "port"},       {"destination", "port"},    {"connection", "mtls"},
             {"connection", "requested_server_name"},              {"connection", "tls_version"},
             {"route_name"},           {"cluster_name"},           {"listener_direction"},
             {"node", "id"},           {"xds", "cluster_name"},    {"xds", "route_name"},
             {"no", "such", "thing"},  {"response", "code"},       {"upstream", "port"}}) {
      property(path);
    }
    size_t n = 0;
    said("header map size", getRequestHeaderSize(&n));
    LOG_INFO("header map size is " + std::to_string(n));
    said("get a missing header", getRequestHeader("x-missing")->view().empty() ? WasmResult::NotFound
                                                                              : WasmResult::Ok);
    said("add x-added", addRequestHeader("x-added", "one"));
    said("add x-added again", addRequestHeader("x-added", "two"));
    said("replace x-probe", replaceRequestHeader("x-probe", "replaced"));
    said("replace a missing header", replaceRequestHeader("x-missing", "now-set"));
    said("remove a missing header", removeRequestHeader("x-nothing"));
    said("add an upper-case name", addRequestHeader("X-Upper", "v"));
    // The pairs point into the buffer: it must outlive them.
    auto buffer = getRequestHeaderPairs();
    for (auto &p : buffer->pairs()) {
      if (p.first.rfind("x-", 0) == 0) {
        LOG_INFO("pair " + std::string(p.first) + " = " + std::string(p.second));
      }
    }
    size_t size = 0;
    uint32_t flags = 0;
    said("request body status in headers", getBufferStatus(WasmBufferType::HttpRequestBody, &size, &flags));
    said("set a request body in headers", setBuffer(WasmBufferType::HttpRequestBody, 0, 0, "x"));
    auto beyond = getBufferBytes(WasmBufferType::HttpRequestBody, 100, 10);
    LOG_INFO("body bytes past the end: " + std::to_string(beyond->size()));

    WasmDataPtr value;
    uint32_t cas = 0;
    said("get missing shared data", getSharedData("api_probe_missing", &value, &cas));
    said("set shared data", setSharedData("api_probe_key", "v1"));
    said("get shared data", getSharedData("api_probe_key", &value, &cas));
    said("set with a wrong cas", setSharedData("api_probe_key", "v2", cas + 1000));
    said("set with the right cas", setSharedData("api_probe_key", "v3", cas));
    uint32_t token = 0;
    said("resolve a queue nobody registered", resolveSharedQueue("no_vm", "no_queue", &token));
    said("enqueue on a bad token", enqueueSharedQueue(987654, "x"));
    said("dequeue on a bad token", dequeueSharedQueue(987654, &value));
    said("register a queue", registerSharedQueue("api_probe_queue", &token));
    said("dequeue an empty queue", dequeueSharedQueue(token, &value));
    said("enqueue", enqueueSharedQueue(token, "item"));
    said("dequeue", dequeueSharedQueue(token, &value));

    uint32_t counter = 0, gauge = 0, histogram = 0;
    uint64_t read = 0;
    said("define a counter", defineMetric(MetricType::Counter, "api_probe_counter", &counter));
    said("define a gauge", defineMetric(MetricType::Gauge, "api_probe_gauge", &gauge));
    said("define a histogram", defineMetric(MetricType::Histogram, "api_probe_histogram", &histogram));
    said("increment the counter", incrementMetric(counter, 2));
    said("decrement the counter", incrementMetric(counter, -1));
    said("increment the gauge", incrementMetric(gauge, -3));
    said("record the gauge", recordMetric(gauge, 7));
    said("record the histogram", recordMetric(histogram, 42));
    said("increment the histogram", incrementMetric(histogram, 1));
    said("read the counter", getMetric(counter, &read));
    said("read the gauge", getMetric(gauge, &read));
    said("read the histogram", getMetric(histogram, &read));
    said("read a metric nobody defined", getMetric(987654, &read));

    HeaderStringPairs call_headers = {{":method", "GET"}, {":path", "/"}, {":authority", "x"}};
    uint32_t call = 0;
    said("call a cluster that does not exist",
         root()->httpCall("no_such_cluster", call_headers, "", {}, 1000,
                          [](uint32_t, size_t, uint32_t) {}));
    (void)call;

    if (!getRequestHeader("x-local")->view().empty()) {
      said("local reply", sendLocalResponse(418, "api_probe_teapot", "short and stout",
                                            {{"x-local-reply", "yes"}}));
      return FilterHeadersStatus::StopIteration;
    }
    return FilterHeadersStatus::Continue;
  }

  FilterDataStatus onRequestBody(size_t size, bool end_of_stream) override {
    LOG_INFO("request body: " + std::to_string(size) + (end_of_stream ? " end" : " more"));
    auto body = getBufferBytes(WasmBufferType::HttpRequestBody, 0, size);
    LOG_INFO("request body is [" + shown(body->view()) + "]");
    said("set the response body in a request body callback",
         setBuffer(WasmBufferType::HttpResponseBody, 0, 0, "x"));
    said("set a TCP buffer in an HTTP stream", setBuffer(WasmBufferType::NetworkDownstreamData, 0, 0, "x"));
    return FilterDataStatus::Continue;
  }

  FilterHeadersStatus onResponseHeaders(uint32_t headers, bool end_of_stream) override {
    LOG_INFO("response headers: " + std::to_string(headers) + (end_of_stream ? " end" : " more"));
    for (auto path : std::vector<std::vector<std::string_view>>{
             {"response", "code"},
             {"response", "code_details"},
             {"response", "flags"},
             {"response", "headers", "content-type"},
             {"upstream", "port"},
             {"request", "headers", "x-added"},
         }) {
      property(path);
    }
    said("add a response header", addResponseHeader("x-api-probe", "seen"));
    said("set the request body in response headers", setBuffer(WasmBufferType::HttpRequestBody, 0, 0, "x"));
    said("set the response body in response headers", setBuffer(WasmBufferType::HttpResponseBody, 0, 0, "x"));
    auto old = getBufferBytes(WasmBufferType::HttpRequestBody, 0, 100);
    LOG_INFO("request body in response headers: " + std::to_string(old->size()));
    return FilterHeadersStatus::Continue;
  }

  void onLog() override {
    said("set the response body in on_log", setBuffer(WasmBufferType::HttpResponseBody, 0, 0, "x"));
    property({"response", "code"});
    property({"response", "size"});
    property({"response", "total_size"});
    property({"response", "headers_bytes"});
    property({"request", "size"});
  }
};

static RegisterContextFactory register_ApiProbe(CONTEXT_FACTORY(ApiProbe), ROOT_FACTORY(ApiRoot));
