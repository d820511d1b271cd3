//! Types discriminated by `@odata.type`, with a raw-JSON catch-all.

/// Declares an enum over `@odata.type` values.
///
/// A known discriminator parses into its variant; anything else, including a
/// missing discriminator, is kept as raw JSON in `Unknown` and written back
/// unchanged.
macro_rules! polymorphic {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($ty:ty) = $odata:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        // Variants hold the Graph types by value so callers can match and
        // build them directly; the size is that of an identity set or two.
        #[allow(clippy::large_enum_variant)]
        pub enum $name {
            $( $(#[$vmeta])* $variant($ty), )+
            /// An `@odata.type` this version does not know, kept as raw JSON.
            Unknown(::serde_json::Value),
        }

        impl $name {
            /// The `@odata.type` values this enum knows.
            pub const ODATA_TYPES: &'static [&'static str] = &[$($odata),+];
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Self::$variant(inner) => inner.serialize(serializer), )+
                    Self::Unknown(raw) => raw.serialize(serializer),
                }
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = ::serde_json::Value::deserialize(deserializer)?;
                let odata = raw.get("@odata.type").and_then(::serde_json::Value::as_str);
                $(
                    if odata.is_some_and(|t| t.eq_ignore_ascii_case($odata)) {
                        return ::serde_json::from_value(raw)
                            .map(Self::$variant)
                            .map_err(::serde::de::Error::custom);
                    }
                )+
                Ok(Self::Unknown(raw))
            }
        }
    };
}
