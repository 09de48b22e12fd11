//! `section!` declares one `[section]` of the schema from a single list of fields: each field's
//! doc comment is both its Rust documentation and the comment `ringwire config default` prints
//! above the key, and its default value sits next to it.

/// Declares a configuration section: the struct (serde, unknown keys refused, missing keys taking
/// their defaults), its `Default`, and its [`Section`](crate::config::render::Section) table of
/// keys and documentation.
macro_rules! section {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $name:ident in $key:literal {
            $(
                $(#[doc = $doc:literal])*
                $(#[serde($($serde:tt)*)])*
                $field:ident : $ty:ty = $default:expr,
            )*
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                $(#[serde($($serde)*)])*
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }

        impl crate::config::render::Section for $name {
            const NAME: &'static str = $key;
            const DOC: &'static [&'static str] = &[$($sdoc),*];
            const FIELDS: &'static [crate::config::render::FieldDoc] = &[
                $(crate::config::render::FieldDoc {
                    key: stringify!($field),
                    doc: &[$($doc),*],
                },)*
            ];
        }
    };
}
