//! Device strings ("cpu", "cuda", "cuda:N") to Candle devices.

use crate::{Error, Result};
use candle_core::Device;

/// Checks a device string without opening the device.
pub(crate) fn validate(spec: &str) -> Result<()> {
    parse(spec).map(|_| ())
}

/// Opens the device a string names; a clear error where this build or machine lacks it.
pub(crate) fn open(spec: &str) -> Result<Device> {
    match parse(spec)? {
        None => Ok(Device::Cpu),
        Some(ordinal) => open_cuda(ordinal),
    }
}

/// `None` for the CPU, `Some(ordinal)` for a CUDA device.
fn parse(spec: &str) -> Result<Option<usize>> {
    let bad = || Error::InvalidArgument(format!("device {spec:?}: expected \"cpu\", \"cuda\" or \"cuda:N\""));
    match spec {
        "cpu" => Ok(None),
        "cuda" => Ok(Some(0)),
        _ => {
            let n = spec.strip_prefix("cuda:").ok_or_else(bad)?;
            n.parse::<usize>().map(Some).map_err(|_| bad())
        }
    }
}

#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize) -> Result<Device> {
    Device::new_cuda(ordinal).map_err(|e| Error::Device(format!("cuda:{ordinal}: {e}")))
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(ordinal: usize) -> Result<Device> {
    Err(Error::Device(format!("cuda:{ordinal} requested but libavg was built without the `cuda` feature")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_strings() {
        assert_eq!(parse("cpu").unwrap(), None);
        assert_eq!(parse("cuda").unwrap(), Some(0));
        assert_eq!(parse("cuda:3").unwrap(), Some(3));
        for bad in ["", "gpu", "cuda:", "cuda:x", "CPU"] {
            assert!(matches!(parse(bad), Err(Error::InvalidArgument(_))), "{bad}");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_feature_is_a_device_error() {
        let err = open("cuda:0").unwrap_err();
        assert!(matches!(err, Error::Device(_)));
        assert!(err.to_string().contains("without the `cuda` feature"));
    }
}
