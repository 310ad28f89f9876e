//! Errors as the OUTSCALE gateway answers them: an HTTP status and an
//! `Errors[{Code, Type, Details}]` body (`reference/oapi.md` §5).

use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError {
    pub status: u16,
    pub code: &'static str,
    pub kind: &'static str,
    pub details: String,
}

impl SimError {
    fn new(
        status: u16,
        code: &'static str,
        kind: &'static str,
        details: impl Into<String>,
    ) -> Self {
        SimError {
            status,
            code,
            kind,
            details: details.into(),
        }
    }

    /// Code 1: bad signature, unknown key, stale or missing date.
    pub fn auth_failed(details: impl Into<String>) -> Self {
        Self::new(401, "1", "AccessDenied", details)
    }

    /// Code 13: the key is locked for a while after repeated failures.
    pub fn locked(details: impl Into<String>) -> Self {
        Self::new(401, "13", "AccessDenied", details)
    }

    pub fn throttled() -> Self {
        Self::new(429, "25", "AccessDenied", "ErrorOperationThrottledPerCall")
    }

    pub fn platform_throttled() -> Self {
        Self::new(
            503,
            "6",
            "AccessDenied",
            "ErrorOperationThrottledWholePlatform",
        )
    }

    pub fn internal(details: impl Into<String>) -> Self {
        Self::new(500, "2000", "InternalError", details)
    }

    pub fn unknown_operation(op: &str) -> Self {
        Self::new(
            400,
            "12000",
            "OperationNotSupported",
            format!("unknown operation {op}"),
        )
    }

    /// A parameter the operation does not have, or a body that is not JSON
    /// (4045 invalid-parameter).
    pub fn invalid_parameter(details: impl Into<String>) -> Self {
        Self::new(400, "4045", "InvalidParameterValue", details)
    }

    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            400,
            "7000",
            "MissingParameter",
            format!("{name} is required"),
        )
    }

    /// 4047 invalid-parameter-value; [`SimError::invalid_code`] for the
    /// more precise codes of the gateway's table.
    pub fn invalid_value(details: impl Into<String>) -> Self {
        Self::new(400, "4047", "InvalidParameterValue", details)
    }

    pub fn invalid_code(code: &'static str, details: impl Into<String>) -> Self {
        Self::new(400, code, "InvalidParameterValue", details)
    }

    /// `no-such-*`: the resource does not exist or is not visible to the caller.
    pub fn not_found(kind: Kind, id: &str) -> Self {
        Self::new(
            400,
            kind.not_found_code(),
            "InvalidResource",
            format!("the {} {id} does not exist", kind.name()),
        )
    }

    pub fn invalid_state(code: &'static str, details: impl Into<String>) -> Self {
        Self::new(409, code, "InvalidState", details)
    }

    pub fn conflict(code: &'static str, details: impl Into<String>) -> Self {
        Self::new(409, code, "ResourceConflict", details)
    }

    /// The resource is used by another one (an image uses the snapshot, a VM
    /// the security group, a VM the volume): HTTP 424, as documented.
    pub fn dependency(details: impl Into<String>) -> Self {
        Self::new(424, "1000", "DependencyProblem", details)
    }

    pub fn quota(code: &'static str, details: impl Into<String>) -> Self {
        Self::new(400, code, "TooManyResources (QuotaExceded)", details)
    }

    pub fn body(&self, request_id: &str) -> serde_json::Value {
        json!({
            "Errors": [{"Code": self.code, "Type": self.kind, "Details": self.details}],
            "ResponseContext": {"RequestId": request_id},
        })
    }
}

/// The kinds of resource the simulator keeps, for ids and error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vm,
    Image,
    Snapshot,
    Volume,
    Keypair,
    SecurityGroup,
    PublicIp,
    Net,
    Subnet,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Vm => "VM",
            Kind::Image => "image",
            Kind::Snapshot => "snapshot",
            Kind::Volume => "volume",
            Kind::Keypair => "keypair",
            Kind::SecurityGroup => "security group",
            Kind::PublicIp => "public IP",
            Kind::Net => "Net",
            Kind::Subnet => "Subnet",
        }
    }

    fn not_found_code(self) -> &'static str {
        match self {
            Kind::Vm => "5063",
            Kind::Image => "5023",
            Kind::Snapshot => "5054",
            Kind::Volume => "5064",
            Kind::Keypair => "5071",
            Kind::SecurityGroup => "5020",
            Kind::PublicIp => "5025",
            Kind::Net => "5065",
            Kind::Subnet => "5057",
        }
    }

    /// `ResourceType` as ReadTags reports it.
    pub fn tag_type(self) -> &'static str {
        match self {
            Kind::Vm => "instance",
            Kind::Image => "image",
            Kind::Snapshot => "snapshot",
            Kind::Volume => "volume",
            Kind::Keypair => "keypair",
            Kind::SecurityGroup => "security-group",
            Kind::PublicIp => "public-ip",
            Kind::Net => "vpc",
            Kind::Subnet => "subnet",
        }
    }

    /// The kind an id belongs to, by its prefix.
    pub fn of_id(id: &str) -> Option<Kind> {
        let prefix = id.split('-').next()?;
        Some(match prefix {
            "i" => Kind::Vm,
            "ami" => Kind::Image,
            "snap" => Kind::Snapshot,
            "vol" => Kind::Volume,
            "key" => Kind::Keypair,
            "sg" => Kind::SecurityGroup,
            "eipalloc" => Kind::PublicIp,
            "vpc" => Kind::Net,
            "subnet" => Kind::Subnet,
            _ => return None,
        })
    }
}

pub type SimResult<T> = Result<T, SimError>;
