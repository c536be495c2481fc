//! The domain's rules, checked without a store.

use super::*;

#[test]
fn key_ids_must_be_lower_case_uuids() {
    assert!("3f1c2a7e-5b4d-4e8f-9a01-6c2d8e4b7f90".parse::<KeyId>().is_ok());
    assert!("3F1C2A7E-5B4D-4E8F-9A01-6C2D8E4B7F90".parse::<KeyId>().is_err());
    assert!("3f1c2a7e5b4d4e8f9a016c2d8e4b7f90".parse::<KeyId>().is_err());
    assert!("".parse::<KeyId>().is_err());
}

#[test]
fn aliases_follow_the_documented_rule() {
    assert!(validate_user_alias("orders-db").is_ok());
    assert!(validate_user_alias("a:b/c_d-e").is_ok());
    assert!(validate_user_alias(&"a".repeat(255)).is_ok());
    assert!(validate_user_alias(&"a".repeat(256)).is_err());
    assert!(validate_user_alias("").is_err());
    assert!(validate_user_alias("has space").is_err());
    assert!(validate_user_alias("csms/default").is_err());
    assert!(validate_user_alias("ünïcode").is_err());
}

#[test]
fn transitions_refuse_without_changing_the_key() {
    let mut key = KeyRecord::sample("p", "a");
    assert_eq!(key.enable(), Err(Rejection::KeyNotDisabled));
    key.disable().unwrap();
    key.schedule_deletion(0, 7).unwrap();
    assert_eq!(key.scheduled_deletion_ms, Some(7 * DAY_MS));
    let before = key.clone();
    assert_eq!(key.rename("b".into()), Err(Rejection::KeyPendingDeletion));
    assert_eq!(key.schedule_deletion(0, 8), Err(Rejection::KeyAlreadyPendingDeletion));
    assert_eq!(key, before);
    key.cancel_deletion().unwrap();
    assert_eq!((key.state, key.scheduled_deletion_ms), (KeyState::Disabled, None));
    key.default_key = true;
    assert_eq!(key.enable(), Err(Rejection::DefaultKeyForbidden));
}

#[test]
fn rotation_rotates_on_schedule_and_refuses_where_documented() {
    let mut key = KeyRecord::sample("p", "a");
    assert_eq!(key.disable_rotation(), Err(Rejection::RotationNotEnabled));
    assert_eq!(key.set_rotation_interval(90), Err(Rejection::RotationNotEnabled));
    key.enable_rotation(1_000).unwrap();
    assert_eq!(key.enable_rotation(1_000), Err(Rejection::RotationNotDisabled));
    key.set_rotation_interval(30).unwrap();
    let day = 10;
    assert_eq!(key.rotation_due_ms(day), Some(1_300));
    assert_eq!(key.rotate(1_299, Rotation::Scheduled { day_ms: day }), Err(Rejection::RotationNotDue));
    key.rotate(1_300, Rotation::Scheduled { day_ms: day }).unwrap();
    assert_eq!((key.material_version, key.rotations, key.rotation_due_ms(day)), (Some(2), 1, Some(1_600)));
    // On demand: a new version, the schedule untouched.
    key.rotate(1_400, Rotation::OnDemand).unwrap();
    assert_eq!((key.material_version, key.rotations, key.last_rotation_ms), (Some(3), 2, Some(1_400)));
    assert_eq!(key.rotation_due_ms(day), Some(1_600));
    key.disable().unwrap();
    assert_eq!(key.rotate(2_000, Rotation::OnDemand), Err(Rejection::KeyDisabled));

    let mut external = KeyRecord { origin: KeyOrigin::External, ..KeyRecord::sample("p", "e") };
    assert_eq!(external.enable_rotation(0), Err(Rejection::ExternalCannotRotate));
    let mut rsa = KeyRecord { spec: KeySpec::Rsa2048, ..KeyRecord::sample("p", "r") };
    assert_eq!(rsa.rotate(0, Rotation::OnDemand), Err(Rejection::RsaCannotRotate));
    let mut ec = KeyRecord { spec: KeySpec::EcP256, ..KeyRecord::sample("p", "c") };
    assert_eq!(ec.enable_rotation(0), Err(Rejection::AsymmetricUnsupported));
    let mut default = KeyRecord { default_key: true, ..KeyRecord::sample("p", "csms/default") };
    assert_eq!(default.enable_rotation(0), Err(Rejection::DefaultKeyForbidden));
}

#[test]
fn keys_are_named_by_id_alias_or_urn() {
    let id = "3f1c2a7e-5b4d-4e8f-9a01-6c2d8e4b7f90";
    assert_eq!(KeyName::parse(id).unwrap(), KeyName::Id(id.parse().unwrap()));
    assert_eq!(KeyName::parse("alias/orders").unwrap(), KeyName::Alias("alias/orders".into()));
    let urn = format!("kms:local-1:{}:alias:alias/orders", "d".repeat(32));
    assert_eq!(KeyName::parse(&urn).unwrap(), KeyName::Alias("alias/orders".into()));
    assert_eq!(KeyName::parse("alias/"), Err(Rejection::InvalidKeyId));
    assert_eq!(KeyName::parse("orders"), Err(Rejection::InvalidKeyId));
    assert_eq!(KeyName::parse(""), Err(Rejection::MissingParameter("key_id")));
    assert!(validate_alias_name("alias/a:b/c_d-e").is_ok());
    assert!(validate_alias_name("orders").is_err());
    assert!(validate_alias_name("alias/x/default").is_err());
    assert!(validate_alias_name(&format!("alias/{}", "a".repeat(256))).is_err());
}

#[test]
fn spec_usage_pairings() {
    assert!(KeySpec::Aes256.check_usage(KeyUsage::EncryptDecrypt).is_ok());
    assert!(matches!(KeySpec::Aes256.check_usage(KeyUsage::SignVerify), Err(Rejection::SymmetricCannotSign)));
    assert!(matches!(KeySpec::EcP256.check_usage(KeyUsage::EncryptDecrypt), Err(Rejection::EcCannotEncrypt)));
    assert!(KeySpec::Hmac256.check_usage(KeyUsage::GenerateVerifyMac).is_ok());
    assert!(KeySpec::Hmac256.check_usage(KeyUsage::EncryptDecrypt).is_err());
}
