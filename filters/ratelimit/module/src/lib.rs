//! `dist/ratelimit.wasm`: the ratelimit policy alone, for chains that place it themselves.

proxy_wasm::main! {{
    wasmgate_shared::module::install::<wasmgate_ratelimit::Plugin>();
}}
