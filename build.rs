//! Links the release binary for Linux as a position-dependent executable
//! (`-no-pie`). A position-independent one makes the dynamic loader apply
//! about 36,000 relocations to the binary's data at every start, writing
//! (and so faulting in) every page they touch before `main`: 0.8 ms of a
//! 3.3 ms cold init, measured in docs/performance.md ("Levers"). The cost
//! is address-space layout randomisation of the binary's own image (the
//! stack, heap and libraries are still randomised); docs/performance.md
//! says why that is accepted for this function. Debug builds (the tests')
//! stay position-independent.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if release && linux {
        println!("cargo:rustc-link-arg-bin=sagemaker-pipeline-stopper=-no-pie");
    }
}
