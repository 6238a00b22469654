(module
  ;; A module that runs a script of hostcalls: each 25-byte record of its plugin configuration is
  ;; an opcode byte (which hostcall) and six little-endian i32 arguments, passed as they are (wild
  ;; pointers and sizes included). It runs the script in proxy_on_configure and again in each
  ;; proxy_on_request_headers and proxy_on_response_headers. Used by the `hostcalls` fuzz target.
  (import "env" "proxy_log" (func $proxy_log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $proxy_get_header_map_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $proxy_add_header_map_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $proxy_replace_header_map_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value" (func $proxy_remove_header_map_value (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $proxy_get_header_map_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_header_map_pairs" (func $proxy_set_header_map_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_size" (func $proxy_get_header_map_size (param i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $proxy_get_buffer_bytes (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $proxy_set_buffer_bytes (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $proxy_get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $proxy_set_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $proxy_send_local_response (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $proxy_set_shared_data (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $proxy_get_shared_data (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_register_shared_queue" (func $proxy_register_shared_queue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_resolve_shared_queue" (func $proxy_resolve_shared_queue (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_enqueue_shared_queue" (func $proxy_enqueue_shared_queue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_dequeue_shared_queue" (func $proxy_dequeue_shared_queue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $proxy_define_metric (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_record_metric" (func $proxy_record_metric (param i32 i64) (result i32)))
  (import "env" "proxy_get_metric" (func $proxy_get_metric (param i32 i32) (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $proxy_set_tick_period_milliseconds (param i32) (result i32)))
  (import "env" "proxy_http_call" (func $proxy_http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $proxy_continue_stream (param i32) (result i32)))
  (import "env" "proxy_close_stream" (func $proxy_close_stream (param i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $proxy_set_effective_context (param i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $proxy_get_current_time_nanoseconds (param i32) (result i32)))
  (import "env" "proxy_grpc_call" (func $proxy_grpc_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_send" (func $proxy_grpc_send (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_cancel" (func $proxy_grpc_cancel (param i32) (result i32)))
  (import "env" "proxy_call_foreign_function" (func $proxy_call_foreign_function (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2 16)
  (global $heap (mut i32) (i32.const 65536))
  (global $script (mut i32) (i32.const 0))
  (global $script_len (mut i32) (i32.const 0))
  (func (export "proxy_abi_version_0_2_1"))
  (func $malloc (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    ;; A bump allocator in the second page and beyond; grows memory, and gives 0 when it cannot.
    (local.set $p (global.get $heap))
    (if (i32.gt_u (local.get $n) (i32.const 0x100000)) (then (return (i32.const 0))))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $n)) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.lt_s (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))) (i32.const 0))
          (then
            ;; Out of room: start over at the second page (the script stays in the first).
            (global.set $heap (i32.const 65536))
            (local.set $p (i32.const 65536))
            (if (i32.gt_u (i32.add (local.get $p) (local.get $n)) (i32.mul (memory.size) (i32.const 65536)))
              (then (return (i32.const 0))))))))
    (global.set $heap (i32.add (local.get $p) (i32.add (local.get $n) (i32.const 8))))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    ;; The script: the plugin configuration, copied to offset 1024 of the first page.
    (drop (call $proxy_get_buffer_bytes (i32.const 7) (i32.const 0) (local.get $size) (i32.const 16) (i32.const 20)))
    (global.set $script_len (i32.load (i32.const 20)))
    (if (i32.gt_u (global.get $script_len) (i32.const 60000)) (then (global.set $script_len (i32.const 60000))))
    (if (i32.ne (i32.load (i32.const 16)) (i32.const 0))
      (then (memory.copy (i32.const 1024) (i32.load (i32.const 16)) (global.get $script_len))))
    (global.set $script (i32.const 1024))
    (call $run)
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (call $run) (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (call $run) (i32.const 0))
  (func (export "proxy_on_tick") (param i32) (call $run))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32) (call $run))
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 1))
  (func (export "proxy_on_delete") (param i32))
  (func $run
    (local $p i32) (local $end i32) (local $op i32)
    (local $a i32) (local $b i32) (local $c i32) (local $d i32) (local $e i32) (local $f i32)
    (local.set $p (global.get $script))
    (local.set $end (i32.add (global.get $script) (global.get $script_len)))
    (block $done
      (loop $next
        (br_if $done (i32.gt_u (i32.add (local.get $p) (i32.const 25)) (local.get $end)))
        (local.set $op (i32.rem_u (i32.load8_u (local.get $p)) (i32.const 32)))
        (local.set $a (i32.load offset=1 (local.get $p)))
        (local.set $b (i32.load offset=5 (local.get $p)))
        (local.set $c (i32.load offset=9 (local.get $p)))
        (local.set $d (i32.load offset=13 (local.get $p)))
        (local.set $e (i32.load offset=17 (local.get $p)))
        (local.set $f (i32.load offset=21 (local.get $p)))
        (local.set $p (i32.add (local.get $p) (i32.const 25)))
          (block $c31
          (block $c30
          (block $c29
          (block $c28
          (block $c27
          (block $c26
          (block $c25
          (block $c24
          (block $c23
          (block $c22
          (block $c21
          (block $c20
          (block $c19
          (block $c18
          (block $c17
          (block $c16
          (block $c15
          (block $c14
          (block $c13
          (block $c12
          (block $c11
          (block $c10
          (block $c9
          (block $c8
          (block $c7
          (block $c6
          (block $c5
          (block $c4
          (block $c3
          (block $c2
          (block $c1
          (block $c0
          (br_table $c0 $c1 $c2 $c3 $c4 $c5 $c6 $c7 $c8 $c9 $c10 $c11 $c12 $c13 $c14 $c15 $c16 $c17 $c18 $c19 $c20 $c21 $c22 $c23 $c24 $c25 $c26 $c27 $c28 $c29 $c30 $c31 $c31 (local.get $op))
          )
          (drop (call $proxy_log (local.get $a) (local.get $b) (local.get $c)))
          (br $next)
          )
          (drop (call $proxy_get_header_map_value (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e)))
          (br $next)
          )
          (drop (call $proxy_add_header_map_value (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e)))
          (br $next)
          )
          (drop (call $proxy_replace_header_map_value (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e)))
          (br $next)
          )
          (drop (call $proxy_remove_header_map_value (local.get $a) (local.get $b) (local.get $c)))
          (br $next)
          )
          (drop (call $proxy_get_header_map_pairs (local.get $a) (local.get $b) (local.get $c)))
          (br $next)
          )
          (drop (call $proxy_set_header_map_pairs (local.get $a) (local.get $b) (local.get $c)))
          (br $next)
          )
          (drop (call $proxy_get_header_map_size (local.get $a) (local.get $b)))
          (br $next)
          )
          (drop (call $proxy_get_buffer_bytes (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e)))
          (br $next)
          )
          (drop (call $proxy_set_buffer_bytes (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e)))
          (br $next)
          )
          (drop (call $proxy_get_property (local.get $a) (local.get $b) (local.get $c) (local.get $d)))
          (br $next)
          )
          (drop (call $proxy_set_property (local.get $a) (local.get $b) (local.get $c) (local.get $d)))
          (br $next)
          )
          (drop (call $proxy_send_local_response (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e) (local.get $f) (local.get $a) (local.get $b)))
          (br $next)
          )
          (drop (call $proxy_set_shared_data (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e)))
          (br $next)
          )
          (drop (call $proxy_get_shared_data (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e)))
          (br $next)
          )
          (drop (call $proxy_register_shared_queue (local.get $a) (local.get $b) (local.get $c)))
          (br $next)
          )
          (drop (call $proxy_resolve_shared_queue (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e)))
          (br $next)
          )
          (drop (call $proxy_enqueue_shared_queue (local.get $a) (local.get $b) (local.get $c)))
          (br $next)
          )
          (drop (call $proxy_dequeue_shared_queue (local.get $a) (local.get $b) (local.get $c)))
          (br $next)
          )
          (drop (call $proxy_define_metric (local.get $a) (local.get $b) (local.get $c) (local.get $d)))
          (br $next)
          )
          (drop (call $proxy_record_metric (local.get $a) (i64.extend_i32_s (local.get $b))))
          (br $next)
          )
          (drop (call $proxy_get_metric (local.get $a) (local.get $b)))
          (br $next)
          )
          (drop (call $proxy_set_tick_period_milliseconds (local.get $a)))
          (br $next)
          )
          (drop (call $proxy_http_call (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e) (local.get $f) (local.get $a) (local.get $b) (local.get $c) (local.get $d)))
          (br $next)
          )
          (drop (call $proxy_continue_stream (local.get $a)))
          (br $next)
          )
          (drop (call $proxy_close_stream (local.get $a)))
          (br $next)
          )
          (drop (call $proxy_set_effective_context (local.get $a)))
          (br $next)
          )
          (drop (call $proxy_get_current_time_nanoseconds (local.get $a)))
          (br $next)
          )
          (drop (call $proxy_grpc_call (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e) (local.get $f) (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e) (local.get $f)))
          (br $next)
          )
          (drop (call $proxy_grpc_send (local.get $a) (local.get $b) (local.get $c) (local.get $d)))
          (br $next)
          )
          (drop (call $proxy_grpc_cancel (local.get $a)))
          (br $next)
          )
          (drop (call $proxy_call_foreign_function (local.get $a) (local.get $b) (local.get $c) (local.get $d) (local.get $e) (local.get $f)))
          (br $next)
      ))
  )
)
