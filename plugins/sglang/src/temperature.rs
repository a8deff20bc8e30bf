//! The sampling temperature as a JSON number.
//!
//! The ollama, triton and tgi adapters compile this file by path (as the
//! vllm adapter does with openai's protocol code): linking this crate would
//! bring its component exports along.

use serde_json::Value;

/// `t` as JSON, written as the user typed it: widening the f32 directly
/// would send 0.7 as 0.699999988079071. A negative or non-finite value is
/// an error naming it.
pub fn temperature_value(t: f32) -> Result<Value, String> {
    if !t.is_finite() || t < 0.0 {
        return Err(format!("temperature must be a finite number >= 0, got {t}"));
    }
    let shortest: f64 = t
        .to_string()
        .parse()
        .map_err(|e| format!("temperature {t} could not be written as JSON: {e}"))?;
    Ok(Value::from(shortest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_form_and_bad_values() {
        assert_eq!(temperature_value(0.7).unwrap().to_string(), "0.7");
        assert_eq!(temperature_value(0.0).unwrap().to_string(), "0.0");
        assert!(temperature_value(-0.5).is_err());
        assert!(temperature_value(f32::NAN).is_err());
        assert!(temperature_value(f32::INFINITY).is_err());
    }
}
