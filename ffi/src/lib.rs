//! C ABI for ringwire. The exported surface arrives with the C ABI issue; for now this crate only
//! exposes the ABI version so the build of the static and shared libraries is exercised.

/// The version of the C ABI this library implements. Bumped on every incompatible change.
#[unsafe(no_mangle)]
pub extern "C" fn ringwire_abi_version() -> u32 {
    0
}
