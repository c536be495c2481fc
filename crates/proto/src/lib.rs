//! Generated protobuf and gRPC code for opendew's internal APIs.
//!
//! The module tree mirrors the proto packages (`kms.v1`, `csms.v1`). Prost
//! types stay at the edges: services convert them to domain types in their
//! own `convert` modules.

#![allow(missing_debug_implementations, clippy::all)]

/// `kms.v1`: key management.
pub mod kms {
    /// Version 1 of the key management API.
    pub mod v1 {
        tonic::include_proto!("kms.v1");
    }
}

/// `csms.v1`: secret management.
pub mod csms {
    /// Version 1 of the secret management API.
    pub mod v1 {
        tonic::include_proto!("csms.v1");
    }
}

/// Kubernetes' plugin APIs, as opendew's plugins serve them.
pub mod k8s {
    /// `k8s.io/kms/apis/v2` (proto package `v2`): the KMS v2 plugin API.
    pub mod kms_v2 {
        tonic::include_proto!("v2");
    }
    /// The Secrets Store CSI Driver's provider API (proto package
    /// `v1alpha1`).
    pub mod csi_v1alpha1 {
        tonic::include_proto!("v1alpha1");
    }
}

/// Encoded `FileDescriptorSet` of every opendew proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/opendew_descriptor.bin"));

/// Huawei's spellings of the proto enums.
pub mod wire;

/// Ranges both ends of an internal API check.
pub mod limits;
