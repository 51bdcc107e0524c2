//! Sign-in rules: password policy, account lockout and idle sign-out.

use crate::ValidationErrors;

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// NIST SP 800-63B style: length over composition rules.
pub fn check_password(password: &str) -> Result<(), ValidationErrors> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(ValidationErrors::single(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(ValidationErrors::single(
            "password",
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

pub fn check_username(username: &str) -> Result<String, ValidationErrors> {
    let u = username.trim().to_lowercase();
    let ok_chars = u
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if u.len() < 2 || u.len() > 64 || !ok_chars {
        return Err(ValidationErrors::single(
            "username",
            "must be 2 to 64 characters: letters, digits, '.', '_' or '-'",
        ));
    }
    Ok(u)
}

/// After `max_failures` consecutive failed sign-ins the account is locked for
/// `lock_seconds`; a successful sign-in resets the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub lock_seconds: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lock_seconds: 15 * 60,
        }
    }
}

/// What a failed attempt does to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    pub failed_count: u32,
    /// Microseconds since the epoch until which sign-in is refused.
    pub locked_until_us: Option<i64>,
}

impl LockoutPolicy {
    pub fn is_locked(&self, locked_until_us: Option<i64>, now_us: i64) -> bool {
        locked_until_us.is_some_and(|until| now_us < until)
    }

    pub fn after_failure(&self, failed_count: u32, now_us: i64) -> FailureOutcome {
        let failed_count = failed_count + 1;
        let locked_until_us =
            (failed_count >= self.max_failures).then(|| now_us + self.lock_seconds * 1_000_000);
        FailureOutcome {
            failed_count: if locked_until_us.is_some() {
                0
            } else {
                failed_count
            },
            locked_until_us,
        }
    }
}

/// A session ends after `idle_seconds` without a request.
pub fn session_expired(last_seen_us: i64, now_us: i64, idle_seconds: i64) -> bool {
    now_us - last_seen_us > idle_seconds * 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_passwords_are_refused_naming_the_field() {
        let err = check_password("short").unwrap_err();
        assert!(err.for_field("password").unwrap().contains("12"));
        assert!(check_password("correct horse battery").is_ok());
    }

    #[test]
    fn usernames_are_normalized_and_checked() {
        assert_eq!(check_username(" Maria.Lopez ").unwrap(), "maria.lopez");
        assert!(check_username("a b").is_err());
        assert!(check_username("x").is_err());
    }

    #[test]
    fn fifth_failure_locks_then_lock_expires() {
        let p = LockoutPolicy {
            max_failures: 5,
            lock_seconds: 60,
        };
        let mut count = 0;
        let mut locked = None;
        for _ in 0..4 {
            let o = p.after_failure(count, 0);
            count = o.failed_count;
            locked = o.locked_until_us;
        }
        assert_eq!(locked, None);
        let o = p.after_failure(count, 0);
        assert!(p.is_locked(o.locked_until_us, 59_000_000));
        assert!(!p.is_locked(o.locked_until_us, 60_000_000));
    }

    #[test]
    fn idle_sessions_expire() {
        assert!(!session_expired(0, 900_000_000, 900));
        assert!(session_expired(0, 900_000_001, 900));
    }
}
