//! `dist/tracing.wasm`: the tracing policy alone, for chains that need no other stage.

proxy_wasm::main! {{
    wasmgate_shared::module::install::<wasmgate_tracing::Tracing>();
}}
