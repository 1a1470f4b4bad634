{
  "targets": [
    {
      "target_name": "tsrun",
      "sources": [
        "native/binding.cc",
        "native/spawn.cc",
        "native/sys.cc",
        "native/seccomp.cc",
        "native/fs_inroot.cc",
        "native/netns.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-strict-aliasing"],
      "cflags_c": ["-std=gnu11", "-fno-exceptions"],
      "cflags_cc": ["-std=gnu++17", "-fexceptions"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["-lseccomp"]
    },
    {
      "target_name": "tsrun-init",
      "type": "executable",
      "sources": ["native/init_main.c", "native/child.c", "native/monitor.c"],
      "defines": ["_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Os", "-std=gnu11"],
      "ldflags": ["-static", "-Wl,--gc-sections"]
    }
  ]
}
