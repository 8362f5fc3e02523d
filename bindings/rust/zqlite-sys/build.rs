//! Links libzqlite (CMake build tree or pkg-config) and generates its raw
//! bindings from include/zqlite.h with bindgen; see ghostflow-build.
use ghostflow_build::{Bindings, CLibrary};

fn main() {
    let lib = CLibrary { name: "zqlite", cmake_subdir: "src/db", header: "zqlite.h" };
    let include = ghostflow_build::link(&lib);
    let spec = Bindings { allow: &["zqlite_.*", "ZQLITE_.*"], block: &[] };
    ghostflow_build::generate(&lib, &include, &spec);
}
