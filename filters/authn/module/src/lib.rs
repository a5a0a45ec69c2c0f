//! `dist/authn.wasm`: the authn policy alone, for chains that place it themselves.

proxy_wasm::main! {{
    wasmgate_shared::module::install::<wasmgate_authn::Worker>();
}}
