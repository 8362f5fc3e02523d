//! Build-script logic shared by `ghostllm-sys`, `zqlite-sys` and
//! `ghostflow-sys`: find one of ghostflow's C libraries, tell cargo how to link
//! it, and generate its raw bindings from the public header with bindgen.
//!
//! Where the library comes from, first match wins:
//!
//! 1. `GHOSTFLOW_BUILD_DIR` names a CMake build directory of ghostflow: the
//!    static archive (`src/llm/libghostllm.a`, ...) is linked from there, the
//!    headers are the source tree's `include/` (read from `CMakeCache.txt`),
//!    and the system libraries it needs are read from the `.pc` file CMake
//!    wrote next to it, so this list never drifts from the C build.
//! 2. pkg-config finds an installed `ghostllm.pc` (`PKG_CONFIG_PATH` for a
//!    non-standard prefix): its shared library and include directory are used.
//!
//! Anything else is a build error that says what to set.
//!
//! A Release build tree made with link-time optimisation (GF_LTO, the
//! default of scripts/setup) holds GCC LTO bytecode that rustc's linker cannot
//! read; its archives are compiled to machine code first (see
//! `compile_lto_archive`).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One C library of the project.
pub struct CLibrary {
    /// pkg-config module and library name: `ghostllm`, `zqlite`, `ghostflow`.
    pub name: &'static str,
    /// Directory of the static archive inside a CMake build tree.
    pub cmake_subdir: &'static str,
    /// Public header, under `include/`.
    pub header: &'static str,
}

/// The project's own libraries; each -sys crate links only its own one, so
/// these are filtered out of the dependency lists read from `.pc` files.
const OWN_LIBS: [&str; 3] = ["ghostllm", "zqlite", "ghostflow"];

/// Emits the cargo link directives for `lib` and returns its include directory.
pub fn link(lib: &CLibrary) -> PathBuf {
    println!("cargo:rerun-if-env-changed=GHOSTFLOW_BUILD_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if let Some(dir) = env::var_os("GHOSTFLOW_BUILD_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        // Build scripts run in their crate's directory, where a relative
        // path would silently mean something else than where it was typed.
        if dir.is_relative() {
            panic!("GHOSTFLOW_BUILD_DIR={} must be an absolute path", dir.display());
        }
        return link_from_build_dir(lib, &dir);
    }
    match pkg_config::Config::new().atleast_version("0.1.0").probe(lib.name) {
        Ok(found) => {
            // pkg-config leaves out the compiler's default directories.
            let defaults = [PathBuf::from("/usr/local/include"), PathBuf::from("/usr/include")];
            let mut candidates = found.include_paths.iter().chain(defaults.iter());
            candidates.find(|p| p.join(lib.header).is_file()).cloned().unwrap_or_else(|| {
                panic!(
                    "pkg-config found {} but none of its include directories {:?} holds {}",
                    lib.name, found.include_paths, lib.header
                )
            })
        }
        Err(e) => panic!(
            "cannot find lib{name}: set GHOSTFLOW_BUILD_DIR to a CMake build directory of \
             ghostflow (for example the repository's build/, made by scripts/setup), or \
             install ghostflow where pkg-config finds {name}.pc (pkg-config said: {e})",
            name = lib.name
        ),
    }
}

fn link_from_build_dir(lib: &CLibrary, dir: &Path) -> PathBuf {
    let archive_dir = dir.join(lib.cmake_subdir);
    let archive = archive_dir.join(format!("lib{}.a", lib.name));
    if !archive.is_file() {
        panic!(
            "GHOSTFLOW_BUILD_DIR={}: {} does not exist; build it first: \
             cmake --build {} --target lib{}_static",
            dir.display(),
            archive.display(),
            dir.display(),
            lib.name
        );
    }
    println!("cargo:rerun-if-changed={}", archive.display());
    let link_dir =
        if holds_gcc_lto_bytecode(&archive) { compile_lto_archive(lib, &archive) } else { archive_dir };
    println!("cargo:rustc-link-search=native={}", link_dir.display());
    println!("cargo:rustc-link-lib=static={}", lib.name);

    // The .pc file in the build tree is the one CMake generated for this
    // build; only its library list is used (its -L points at the install
    // prefix, not here).
    env::set_var("PKG_CONFIG_PATH", dir);
    let deps = pkg_config::Config::new()
        .statik(true)
        .cargo_metadata(false)
        .env_metadata(false)
        .probe(lib.name)
        .unwrap_or_else(|e| panic!("reading {}/{}.pc: {e}", dir.display(), lib.name));
    for name in deps.libs.iter().filter(|l| !OWN_LIBS.contains(&l.as_str())) {
        println!("cargo:rustc-link-lib={name}");
    }

    let source_dir = cmake_source_dir(dir);
    let include = source_dir.join("include");
    if !include.join(lib.header).is_file() {
        panic!("{} not found (source tree of {})", include.join(lib.header).display(), dir.display());
    }
    include
}

/// True when the archive's objects carry GCC LTO bytecode (a Release build
/// with GF_LTO). Such objects hold no machine code unless built with
/// -ffat-lto-objects, and rustc's default linker (rust-lld) cannot read them.
fn holds_gcc_lto_bytecode(archive: &Path) -> bool {
    let bytes = fs::read(archive).unwrap_or_else(|e| panic!("{}: {e}", archive.display()));
    let marker = b".gnu.lto_";
    bytes.windows(marker.len()).any(|w| w == marker)
}

/// Finishes the link-time optimisation of an LTO archive into one ordinary
/// relocatable object (`gcc -r -flinker-output=nolto-rel`, the same code
/// generation a final GCC link would do) and archives it in OUT_DIR, which is
/// returned as the directory to link from.
fn compile_lto_archive(lib: &CLibrary, archive: &Path) -> PathBuf {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let object = out.join(format!("{}-lto.o", lib.name));
    let merged = out.join(format!("lib{}.a", lib.name));
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let ar = env::var("AR").unwrap_or_else(|_| "ar".into());
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo:rerun-if-env-changed=AR");
    run(Command::new(&cc)
        .args(["-r", "-nostdlib", "-flinker-output=nolto-rel", "-o"])
        .arg(&object)
        .arg("-Wl,--whole-archive")
        .arg(archive)
        .arg("-Wl,--no-whole-archive"));
    let _ = fs::remove_file(&merged);
    run(Command::new(&ar).arg("crs").arg(&merged).arg(&object));
    out
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    if !status.success() {
        panic!("{cmd:?} failed ({status})");
    }
}

/// The source tree a CMake build directory was configured from.
fn cmake_source_dir(build_dir: &Path) -> PathBuf {
    let cache = build_dir.join("CMakeCache.txt");
    let text = fs::read_to_string(&cache)
        .unwrap_or_else(|e| panic!("{}: {e} (is this a CMake build directory?)", cache.display()));
    text.lines()
        .find_map(|l| l.strip_prefix("CMAKE_HOME_DIRECTORY:INTERNAL="))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{}: no CMAKE_HOME_DIRECTORY entry", cache.display()))
}

/// What to take from a header: items whose names match `allow`, minus those
/// matching `block` (they come from another -sys crate, which the including
/// `lib.rs` brings into scope).
pub struct Bindings<'a> {
    pub allow: &'a [&'a str],
    pub block: &'a [&'a str],
}

/// Runs bindgen on `include/<lib.header>` and writes `$OUT_DIR/bindings.rs`.
pub fn generate(lib: &CLibrary, include: &Path, spec: &Bindings) {
    let header = include.join(lib.header);
    // Every header of include/ may be pulled in (ghostflow.h includes the
    // other two), so a change to any of them regenerates.
    for entry in fs::read_dir(include).into_iter().flatten().flatten() {
        if entry.path().extension().map_or(false, |e| e == "h") {
            println!("cargo:rerun-if-changed={}", entry.path().display());
        }
    }
    let mut builder = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_arg(format!("-I{}", include.display()))
        // C enums become integer constants: a value the Rust side did not
        // know of must not be undefined behaviour.
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .size_t_is_usize(true)
        .derive_default(true)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks));
    for pattern in spec.allow {
        builder = builder.allowlist_function(pattern).allowlist_type(pattern).allowlist_var(pattern);
    }
    for pattern in spec.block {
        builder = builder.blocklist_item(pattern).blocklist_type(pattern).blocklist_function(pattern);
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    builder
        .generate()
        .unwrap_or_else(|e| {
            panic!("bindgen failed on {}: {e:?} (is libclang-dev installed?)", header.display())
        })
        .write_to_file(out.join("bindings.rs"))
        .unwrap_or_else(|e| panic!("writing {}/bindings.rs: {e}", out.display()));
}
