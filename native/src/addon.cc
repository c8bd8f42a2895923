// N-API glue: the one entry point for ops, call(code, heap ArrayBuffer, args Float64Array),
// the op table and enums it is described by, and the controls (threads, precision, info,
// one event-loop turn for the WebGPU backend's synchronous reads).
#include <node_api.h>
#include <uv.h>

#include <new>
#include <string>

#include "ops.h"

namespace mp {
namespace {

#define CHECK(call) \
  if ((call) != napi_ok) { napi_throw_error(env, nullptr, "medpipe native: bad argument in " #call); return nullptr; }

napi_value throw_js(napi_env env, const std::string& msg) {
  napi_throw_error(env, nullptr, ("medpipe native " + msg).c_str());
  return nullptr;
}

// call(code, heap, args): checks the shape of the call against the op table, then runs it.
napi_value CallOp(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 3) return throw_js(env, "call: arguments must be (code, heap, Float64Array)");
  int32_t code;
  CHECK(napi_get_value_int32(env, argv[0], &code));
  if (code < 0 || code >= OP_COUNT) return throw_js(env, "call: unknown op code " + std::to_string(code));
  const OpDef& op = OPS[code];
  void* heap = nullptr;
  size_t heap_bytes = 0;
  if (napi_get_arraybuffer_info(env, argv[1], &heap, &heap_bytes) != napi_ok) return throw_js(env, std::string(op.name) + ": heap must be an ArrayBuffer");
  napi_typedarray_type type;
  size_t len, boff;
  void* data;
  napi_value ab;
  if (napi_get_typedarray_info(env, argv[2], &type, &len, &data, &ab, &boff) != napi_ok || type != napi_float64_array) {
    return throw_js(env, std::string(op.name) + ": args must be a Float64Array");
  }
  const size_t tail = len >= (size_t)op.arity ? len - op.arity : 0;
  if (len < (size_t)op.arity || (op.group == 0 ? tail != 0 : tail % op.group != 0)) {
    return throw_js(env, std::string(op.name) + ": " + std::to_string(len) + " args, expected " + std::to_string(op.arity) +
                             (op.group ? " + groups of " + std::to_string(op.group) : std::string()));
  }
  const double* a = static_cast<const double*>(data);
  const Call c{op.name, static_cast<float*>(heap), heap_bytes / 4, a, a + op.arity, tail};
  try {
    op.fn(c);
  } catch (const OpError& e) {
    return throw_js(env, e.what());
  } catch (const std::bad_alloc&) {
    return throw_js(env, std::string(op.name) + ": out of memory");
  }
  return nullptr;
}

napi_value string(napi_env env, const char* s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

napi_value int32(napi_env env, int i) {
  napi_value v;
  napi_create_int32(env, i, &v);
  return v;
}

// [{ name, code, arity, group }] in code order.
napi_value op_table(napi_env env) {
  napi_value arr;
  napi_create_array_with_length(env, OP_COUNT, &arr);
  for (int i = 0; i < OP_COUNT; i++) {
    napi_value o;
    napi_create_object(env, &o);
    napi_set_named_property(env, o, "name", string(env, OPS[i].name));
    napi_set_named_property(env, o, "code", int32(env, i));
    napi_set_named_property(env, o, "arity", int32(env, OPS[i].arity));
    napi_set_named_property(env, o, "group", int32(env, OPS[i].group));
    napi_set_element(env, arr, i, o);
  }
  return arr;
}

// { enumName: [member names in code order] }.
napi_value enum_table(napi_env env) {
  napi_value obj;
  napi_create_object(env, &obj);
  for (int i = 0; i < ENUM_COUNT; i++) {
    napi_value arr;
    napi_create_array_with_length(env, ENUMS[i].count, &arr);
    for (int k = 0; k < ENUMS[i].count; k++) napi_set_element(env, arr, k, string(env, ENUMS[i].members[k]));
    napi_set_named_property(env, obj, ENUMS[i].name, arr);
  }
  return obj;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  int32_t n = 1;
  CHECK(napi_get_value_int32(env, argv[0], &n));
  pool_resize(n);
  return nullptr;
}

// setPrecision(code of the `precision` enum): false (unchanged) where the CPU lacks it.
napi_value SetPrecision(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  int32_t p = 0;
  CHECK(napi_get_value_int32(env, argv[0], &p));
  if (p < 0 || p >= PREC_COUNT) return throw_js(env, "setPrecision: unknown precision code " + std::to_string(p));
  napi_value out;
  napi_get_boolean(env, set_gemm_precision((Precision)p), &out);
  return out;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, bf;
  napi_create_object(env, &obj);
  napi_set_named_property(env, obj, "isa", string(env, gemm_isa()));
  napi_set_named_property(env, obj, "threads", int32(env, pool_size()));
  napi_get_boolean(env, bf16_supported(), &bf);
  napi_set_named_property(env, obj, "bf16", bf);
  napi_set_named_property(env, obj, "bf16Kernel", string(env, bf16_kernel()));
  napi_value amx, vdp;
  napi_get_boolean(env, gemm_amx_built(), &amx);
  napi_set_named_property(env, obj, "amxBuilt", amx);
  napi_get_boolean(env, gemm_avx512bf16_built(), &vdp);
  napi_set_named_property(env, obj, "avx512bf16Built", vdp);
  napi_set_named_property(env, obj, "precision", int32(env, gemm_precision()));
  return obj;
}

// One non-blocking turn of Node's event loop, so that a synchronous read on the WebGPU
// backend (tfjs dataSync) can wait for Dawn's buffer mapping, which completes only through
// callbacks the loop runs. Returns whether the loop has more work.
napi_value PumpEvents(napi_env env, napi_callback_info) {
  uv_loop_t* loop = nullptr;
  napi_value out;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return throw_js(env, "pumpEvents: no event loop");
  napi_get_boolean(env, uv_run(loop, UV_RUN_NOWAIT) != 0, &out);
  return out;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"call", nullptr, CallOp, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setPrecision", nullptr, SetPrecision, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"pumpEvents", nullptr, PumpEvents, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"ops", nullptr, nullptr, nullptr, nullptr, op_table(env), napi_enumerable, nullptr},
      {"enums", nullptr, nullptr, nullptr, nullptr, enum_table(env), napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace
}  // namespace mp

NAPI_MODULE(NODE_GYP_MODULE_NAME, mp::Init)
