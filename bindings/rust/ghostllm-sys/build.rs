//! Links libghostllm (CMake build tree or pkg-config) and generates its raw
//! bindings from include/ghostllm.h with bindgen; see ghostflow-build.
use ghostflow_build::{Bindings, CLibrary};

fn main() {
    let lib = CLibrary { name: "ghostllm", cmake_subdir: "src/llm", header: "ghostllm.h" };
    let include = ghostflow_build::link(&lib);
    let spec = Bindings { allow: &["ghost_.*", "GHOST_.*"], block: &[] };
    ghostflow_build::generate(&lib, &include, &spec);
}
