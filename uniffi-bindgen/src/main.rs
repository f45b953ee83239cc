//! Runs uniffi's binding generator (`generate --library …`) for Python, Kotlin and Swift.

fn main() {
    uniffi::uniffi_bindgen_main()
}
