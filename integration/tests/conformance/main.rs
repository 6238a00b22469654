//! The conformance tier: material nobody on the team wrote (the official Go, Rust and C++ SDKs'
//! examples, from `../shared/thirdparty` or `SLUICE_THIRDPARTY`), run in the real Envoy 1.40 and
//! in sluice side by side.
//!
//! A user's clone has no corpus: then every test here is reported as ignored, with the reason, in
//! the output and in the closing counts, never passed. With `SLUICE_THIRDPARTY` set, a corpus that
//! is not there fails every test instead (CI sets it, so a missing corpus cannot go unnoticed).
//! `cargo test -p sluice-integration --test conformance -- NAME` runs the tests whose name
//! contains NAME (`go/http_body`, `rust/`, `stats`).

mod cpp;
mod proxy_surface;
mod sdk_examples;

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use sluice_integration::thirdparty::{self, Corpus, Sdk, Toolchain};

/// One test of the tier: its name and what it runs (it panics on a difference).
type Check = (String, Box<dyn FnOnce() -> Result<(), String> + Send>);

fn checks() -> Vec<Check> {
    let mut out: Vec<Check> = Vec::new();
    for example in sdk_examples::examples() {
        let sdk = match example.sdk {
            Sdk::Go => "go".to_string(),
            Sdk::Rust => "rust".to_string(),
            Sdk::Cpp(toolchain) => format!("cpp/{}", toolchain.name()),
        };
        out.push((format!("sdk_examples::{sdk}/{}", example.name), Box::new(move || sdk_examples::run(&example))));
    }
    for toolchain in Toolchain::ALL {
        out.push((format!("cpp::{}/api_probe", toolchain.name()), Box::new(move || cpp::api_probe(toolchain))));
        for policy in ["FAIL_CLOSED", "FAIL_OPEN", "FAIL_RELOAD"] {
            out.push((
                format!("cpp::{}/libc_probe/{policy}", toolchain.name()),
                Box::new(move || cpp::libc_probe(toolchain, policy)),
            ));
        }
    }
    let surface: [(&str, fn()); 6] = [
        (
            "an_example_needing_a_missing_envoy_filter_is_refused_by_name",
            proxy_surface::an_example_needing_a_missing_envoy_filter_is_refused_by_name,
        ),
        ("envoys_command_line_runs_sluice", proxy_surface::envoys_command_line_runs_sluice),
        ("stats_have_envoys_names_and_values", proxy_surface::stats_have_envoys_names_and_values),
        ("config_dumps_match_envoys", proxy_surface::config_dumps_match_envoys),
        ("plugins_start_as_often_as_in_envoy", proxy_surface::plugins_start_as_often_as_in_envoy),
        (
            "plugins_with_one_vm_id_and_code_share_a_vm_and_number_their_contexts_as_in_envoy",
            proxy_surface::plugins_with_one_vm_id_and_code_share_a_vm_and_number_their_contexts_as_in_envoy,
        ),
    ];
    for (name, f) in surface {
        out.push((
            format!("proxy_surface::{name}"),
            Box::new(move || {
                f();
                Ok(())
            }),
        ));
    }
    out
}

fn main() {
    let args = Arguments::from_args();
    let corpus = thirdparty::corpus();
    match &corpus {
        Ok(Corpus::At(dir)) => println!("conformance tier: the corpus is at {}", dir.display()),
        Ok(Corpus::Absent(why)) => println!(
            "conformance tier NOT RUN: {why}.\n  Its tests are reported as ignored below. To run them, put the corpus \
             beside the clone or set SLUICE_THIRDPARTY=PATH."
        ),
        Err(why) => println!("conformance tier FAILS: {why}"),
    }
    let trials = checks()
        .into_iter()
        .map(|(name, check)| match corpus.clone() {
            Ok(Corpus::At(_)) => Trial::test(name, move || check().map_err(Failed::from)),
            // The whole reason is printed once above; each test names what it lacked.
            Ok(Corpus::Absent(_)) => Trial::ignorable_test(name, || Ok(Completion::ignored_with("no corpus"))),
            Err(why) => Trial::test(name, move || Err(Failed::from(why))),
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
