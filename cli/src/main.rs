//! `wasmgate`: what an operator runs next to the modules.
//!
//! - `wasmgate check [--module NAME] FILE…` compiles every wasmgate configuration in the files
//!   (a filter configuration, an Envoy configuration, an Istio `WasmPlugin` or kustomization)
//!   with the modules' own code and prints, for each, `ok` or the exact line the module would
//!   log when refusing it, then a line per risky setting (`--allow NAME` silences one). Exits 1
//!   if any is refused or a file holds none; warnings do not change the exit code.
//!   `--format json` prints one JSON document instead, for CI.
//! - `wasmgate key new` prints a random API key and its `key_sha256`.
//! - `wasmgate key hash` reads a key on stdin and prints its `key_sha256`.
//! - `wasmgate token inspect` prints a JWT's header and claims (not verified) and, with
//!   `--config`, what each authn configuration in that file answers to a request carrying it.
//! - `wasmgate schema MODULE` prints the JSON Schema of a module's configuration (the file
//!   `docs/schemas/MODULE.schema.json` holds).

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use wasmgate_cli::report::{self, Checked};
use wasmgate_cli::{modules, schemas, sources, token, warnings};

const USAGE: &str =
    "usage: wasmgate check [--module gateway|tracing|authn|ratelimit] [--allow WARNING]... FILE...
       wasmgate key new
       wasmgate key hash < key
       wasmgate token inspect [--config FILE] [--path PATH] [--jwks FILE] TOKEN
       wasmgate schema gateway|tracing|authn|ratelimit";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["check", rest @ ..] => check(rest),
        ["key", "new"] => key_new(),
        ["key", "hash"] => key_hash(),
        ["token", "inspect", rest @ ..] => token_inspect(rest),
        ["schema", module] => schemas::schema(module)
            .map(|schema| print!("{schema}"))
            .ok_or_else(|| USAGE.to_string()),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn check(mut args: &[&str]) -> Result<(), String> {
    let mut module = None;
    let mut allowed: Vec<&str> = Vec::new();
    let mut as_json = false;
    loop {
        match args {
            ["--module", name, rest @ ..] => (module, args) = (Some(*name), rest),
            ["--format", "json", rest @ ..] => (as_json, args) = (true, rest),
            ["--format", "text", rest @ ..] => (as_json, args) = (false, rest),
            ["--allow", name, rest @ ..] if warnings::NAMES.contains(name) => {
                allowed.push(name);
                args = rest;
            }
            ["--allow", name, ..] => {
                return Err(format!(
                    "no warning is called {name:?}: one of {}",
                    warnings::NAMES.join(", ")
                ))
            }
            _ => break,
        }
    }
    if args.is_empty() || args.iter().any(|a| a.starts_with("--")) {
        return Err(USAGE.to_string());
    }
    let mut checked = Vec::new();
    let mut empty = Vec::new();
    for file in args {
        let found = sources::find(Path::new(file), module)?;
        if found.is_empty() {
            empty.push(*file);
        }
        let warned = warnings::for_file(&found);
        for (f, warned) in found.iter().zip(warned) {
            checked.push(Checked {
                at: match f.line {
                    0 => f.file.display().to_string(),
                    line => format!("{}:{line}", f.file.display()),
                },
                place: f.place.clone(),
                module: f.module.clone(),
                refused: modules::check(&f.module, &f.config).err(),
                warnings: warned
                    .into_iter()
                    .filter(|w| !allowed.contains(&w.name))
                    .map(|w| (w.name, w.message))
                    .collect(),
            });
        }
    }
    print!(
        "{}",
        if as_json {
            report::json(&checked)
        } else {
            report::text(&checked, report::Paint::for_stdout())
        }
    );
    let refused = checked.iter().filter(|c| c.refused.is_some()).count();
    if !empty.is_empty() {
        return Err(format!("no wasmgate configuration in {}", empty.join(", ")));
    }
    if refused > 0 {
        return Err(format!("{refused} configuration(s) refused"));
    }
    Ok(())
}

fn token_inspect(mut args: &[&str]) -> Result<(), String> {
    let (mut config, mut path, mut jwks) = (None, "/", None);
    loop {
        match args {
            ["--config", file, rest @ ..] => (config, args) = (Some(*file), rest),
            ["--path", p, rest @ ..] => (path, args) = (*p, rest),
            ["--jwks", file, rest @ ..] => (jwks, args) = (Some(*file), rest),
            _ => break,
        }
    }
    let [token] = args else {
        return Err(USAGE.to_string());
    };
    let (header, claims) = token::decode(token)?;
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    println!("header (not verified): {}", pretty(&header));
    println!("claims (not verified): {}", pretty(&claims));
    for line in token::times(&claims) {
        println!("{line}");
    }
    let Some(config) = config else {
        return Ok(());
    };
    let jwks = match jwks {
        Some(file) => Some(std::fs::read(file).map_err(|e| format!("{file}: {e}"))?),
        None => None,
    };
    for found in sources::find(Path::new(config), Some("authn"))? {
        if let Some(answer) = token::verdict(&found, token, path, jwks.as_deref()) {
            println!(
                "{} {} ({}): {answer}",
                found.file.display(),
                found.place,
                found.module
            );
        }
    }
    Ok(())
}

fn key_new() -> Result<(), String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    let key = hex(&bytes);
    println!("key:        {key}");
    println!("key_sha256: {}", hex(&Sha256::digest(key.as_bytes())));
    Ok(())
}

/// The key is what stdin holds, without one trailing line break (as `echo` adds).
fn key_hash() -> Result<(), String> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    let key = input
        .strip_suffix('\n')
        .map(|k| k.strip_suffix('\r').unwrap_or(k))
        .unwrap_or(&input);
    if key.is_empty() {
        return Err("no key on stdin".into());
    }
    println!("{}", hex(&Sha256::digest(key.as_bytes())));
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
