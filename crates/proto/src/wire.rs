//! Huawei's spellings of the proto enums.

/// Huawei's spelling of a proto enum value is its proto name without the
/// enum's prefix (`KEY_SPEC_AES_256` is `AES_256`), so a new value is one
/// line in the proto and no table anywhere else.
pub trait WireName: Sized + Copy + 'static {
    /// The prefix every value name of the enum carries, `KEY_SPEC_`.
    const PREFIX: &'static str;

    /// The proto name (prost's `as_str_name`).
    fn proto_name(self) -> &'static str;

    /// The value of a proto name (prost's `from_str_name`).
    fn from_proto_name(name: &str) -> Option<Self>;

    /// Huawei's spelling; `None` for the `UNSPECIFIED` value.
    fn huawei_name(self) -> Option<&'static str> {
        let name = self.proto_name().strip_prefix(Self::PREFIX)?;
        (name != "UNSPECIFIED").then_some(name)
    }

    /// The value Huawei spells `name`; `None` for unknown names and for
    /// `UNSPECIFIED`, which is no value on the wire.
    fn from_huawei_name(name: &str) -> Option<Self> {
        // Bounded: no name of ours is this long, and nothing longer is copied.
        if name.len() > 64 || name == "UNSPECIFIED" {
            return None;
        }
        Self::from_proto_name(&format!("{}{name}", Self::PREFIX))
    }
}

macro_rules! wire_names {
    ($($ty:ty => $prefix:literal),+ $(,)?) => {$(
        impl WireName for $ty {
            const PREFIX: &'static str = $prefix;
            fn proto_name(self) -> &'static str {
                self.as_str_name()
            }
            fn from_proto_name(name: &str) -> Option<Self> {
                Self::from_str_name(name)
            }
        }
    )+};
}

wire_names! {
    crate::kms::v1::KeySpec => "KEY_SPEC_",
    crate::kms::v1::KeyUsage => "KEY_USAGE_",
    crate::kms::v1::KeyOrigin => "KEY_ORIGIN_",
    crate::kms::v1::SigningAlgorithm => "SIGNING_ALGORITHM_",
    crate::kms::v1::MessageType => "MESSAGE_TYPE_",
    crate::kms::v1::MacAlgorithm => "MAC_ALGORITHM_",
    crate::kms::v1::EncryptionAlgorithm => "ENCRYPTION_ALGORITHM_",
    crate::csms::v1::ErrorReason => "ERROR_REASON_",
}

#[cfg(test)]
mod tests {
    use super::WireName;
    use crate::kms::v1 as pb;

    #[test]
    fn huawei_names_are_the_proto_names_without_the_prefix() {
        assert_eq!(pb::KeySpec::EcP256.huawei_name(), Some("EC_P256"));
        assert_eq!(
            pb::SigningAlgorithm::from_huawei_name("RSASSA_PKCS1_V1_5_SHA_256"),
            Some(pb::SigningAlgorithm::RsassaPkcs1V15Sha256)
        );
        assert_eq!(pb::KeySpec::Unspecified.huawei_name(), None);
        assert_eq!(pb::KeySpec::from_huawei_name("UNSPECIFIED"), None);
        assert_eq!(pb::KeySpec::from_huawei_name("KEY_SPEC_AES_256"), None);
        assert_eq!(pb::KeySpec::from_huawei_name(&"A".repeat(100_000)), None);
    }
}
