{
  "targets": [
    {
      "target_name": "starnix_native",
      "sources": [
        "native/addon.cc",
        "native/channel.cc",
        "native/handle_info.cc",
        "native/memfd.cc",
        "native/transport_service.cc",
        "native/pager.cc",
        "native/mapping.cc",
        "native/pager_core.cc",
        "native/close_watch.cc",
        "native/fd_watch.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": ["-lpthread"]
    }
  ]
}
