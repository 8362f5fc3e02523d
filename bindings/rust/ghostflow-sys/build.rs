//! Links libghostflow (CMake build tree or pkg-config) and generates its raw
//! bindings from include/ghostflow.h with bindgen; see ghostflow-build.
use ghostflow_build::{Bindings, CLibrary};

fn main() {
    let lib = CLibrary { name: "ghostflow", cmake_subdir: "src/flow", header: "ghostflow.h" };
    let include = ghostflow_build::link(&lib);
    let spec =
        Bindings { allow: &["gf_.*", "GF_.*"], block: &["ghost_.*", "GHOST_.*", "zqlite_.*", "ZQLITE_.*"] };
    ghostflow_build::generate(&lib, &include, &spec);
}
