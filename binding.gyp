{
  "variables": {
    # "", "address" (ASan + UBSan) or "thread" (TSan): set by scripts/test_sanitize.sh, which
    # builds the sanitized addon in build-sanitize/<variant>/, never in build/.
    "sanitize%": ""
  },
  "targets": [
    {
      "target_name": "starnix_native",
      "sources": [
        "native/addon.cc",
        "native/channel.cc",
        "native/handle_info.cc",
        "native/memfd.cc",
        "native/transport_service.cc",
        "native/server_resources.cc",
        "native/pager.cc",
        "native/mapping.cc",
        "native/pager_core.cc",
        "native/close_watch.cc",
        "native/fd_watch.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["-lpthread"],
      # -Bsymbolic-functions: the addon's calls to functions it defines itself bind to its own
      # copies, not to same-named ones the host binary exports. Node exports every symbol it has
      # (addons link against V8 and libuv that way), among them its own instantiations of
      # libstdc++ templates: the nodesource node 20 here, built by GCC 10.3 (Red Hat), exports
      # std::_Sp_counted_base<_S_atomic>::_M_release() among 1674 std:: functions. Without the
      # flag the 57 calls to _M_release in the -O2 addon went through the PLT and ran Node's
      # copy, not the addon's. Measured on that copy: it decrements with lock xadd, so the shared_ptr race that
      # ThreadSanitizer reported on Attachment/PagedFile refcounts without the flag is an artefact
      # (TSan cannot see atomics in uninstrumented code), not a race. The interposition itself is
      # real, though: the addon then runs code built by another compiler from other headers,
      # which is safe only as long as libstdc++'s ABI promise holds for every such function. With
      # the flag the addon runs exactly the code it was compiled and tested as, sanitized or not,
      # whatever Node loads it; data (typeinfo, template statics) is still shared, so exceptions
      # and dynamic_cast across the boundary keep working. See docs/hardening.md.
      "ldflags": ["-Wl,-Bsymbolic-functions"],
      "conditions": [
        ["sanitize=='address'", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-g", "-O1"],
          "ldflags": ["-fsanitize=address,undefined"]
        }],
        ["sanitize=='thread'", {
          "cflags_cc": ["-fsanitize=thread", "-fno-omit-frame-pointer", "-g", "-O1"],
          "ldflags": ["-fsanitize=thread"]
        }]
      ]
    }
  ]
}
