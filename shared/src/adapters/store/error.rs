//! The store's error type: what went wrong, classified so that the service layer can decide
//! (retry, return the stored item, or answer 503) without looking at SDK types.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

/// Why one write of a cancelled transaction failed (`CancellationReasons`, in write order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancellationCode {
    /// This write was fine; another one cancelled the transaction.
    None,
    ConditionalCheckFailed,
    /// Another transaction touched the same item at the same time: retry.
    TransactionConflict,
    Throttling,
    Other(String),
}

impl CancellationCode {
    fn parse(code: Option<&str>) -> Self {
        match code {
            None | Some("None") => Self::None,
            Some("ConditionalCheckFailed") => Self::ConditionalCheckFailed,
            Some("TransactionConflict") => Self::TransactionConflict,
            Some("ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded") => {
                Self::Throttling
            }
            Some(other) => Self::Other(other.to_owned()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional single-item write was refused.
    #[error("the condition of the write was not met")]
    ConditionFailed,
    /// A transaction was cancelled; one reason per write, in the order they were given.
    #[error("the transaction was cancelled: {reasons:?}")]
    TransactionCanceled { reasons: Vec<CancellationCode> },
    /// DynamoDB throttled the request, timed out, could not be reached, or failed on its side.
    #[error("DynamoDB {operation} did not answer in time or refused the load")]
    Unavailable {
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Any other answer: a bug in the request or a misconfiguration (wrong table, no permission).
    #[error("DynamoDB {operation} failed")]
    Service {
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An item did not map to or from its Rust type.
    #[error("an item did not match its type")]
    Mapping(#[source] serde_dynamo::Error),
    /// The adapter was asked for something DynamoDB cannot do.
    #[error("invalid store request: {0}")]
    Invalid(&'static str),
}

/// Error codes that mean "the service is overloaded or failing, try later".
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

impl StoreError {
    /// True when the client should hear 503 (retry later) rather than 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::TransactionCanceled { reasons } => reasons.iter().any(|r| {
                matches!(
                    r,
                    CancellationCode::TransactionConflict | CancellationCode::Throttling
                )
            }),
            _ => false,
        }
    }

    /// The cancellation reasons, when this is a cancelled transaction.
    pub fn cancellation_reasons(&self) -> Option<&[CancellationCode]> {
        match self {
            Self::TransactionCanceled { reasons } => Some(reasons),
            _ => None,
        }
    }

    pub(super) fn build(source: aws_sdk_dynamodb::error::BuildError) -> Self {
        Self::Service {
            operation: "build",
            source: Box::new(source),
        }
    }

    /// Classifies an SDK error. A failed condition on a single write is `ConditionFailed`; a
    /// conflict with a transaction is that transaction's `TransactionConflict`.
    pub(super) fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let retryable = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
            SdkError::ServiceError(service) => service
                .err()
                .code()
                .is_some_and(|c| RETRYABLE_CODES.contains(&c)),
            SdkError::ResponseError(_) => true,
            _ => false,
        };
        if let SdkError::ServiceError(service) = &err {
            match service.err().code() {
                Some("ConditionalCheckFailedException") => return Self::ConditionFailed,
                // A single write that met a transaction in progress on its item: the race a
                // transaction would report, and as retryable.
                Some("TransactionConflictException") => {
                    return Self::TransactionCanceled {
                        reasons: vec![CancellationCode::TransactionConflict],
                    };
                }
                _ => {}
            }
        }
        let source = Box::new(err);
        if retryable {
            Self::Unavailable { operation, source }
        } else {
            Self::Service { operation, source }
        }
    }

    pub(super) fn from_transact<R>(err: SdkError<TransactWriteItemsError, R>) -> Self
    where
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        if let SdkError::ServiceError(service) = &err
            && let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err()
        {
            let reasons = cancelled
                .cancellation_reasons()
                .iter()
                .map(|r| CancellationCode::parse(r.code()))
                .collect();
            return Self::TransactionCanceled { reasons };
        }
        Self::from_sdk("TransactWriteItems", err)
    }
}

/// Why a transaction of named writes ([`super::DynamoStore::transact_named`]) did not commit.
#[derive(Debug)]
pub enum TransactError<N> {
    /// Cancelled: every write's reason, under the name the caller gave the write.
    Canceled(Vec<(N, CancellationCode)>),
    /// Anything else the store said (unavailable, throttled, invalid …).
    Store(StoreError),
}

impl<N: PartialEq> TransactError<N> {
    /// The reason the write named `name` gave, when the transaction was cancelled.
    pub fn reason(&self, name: N) -> Option<&CancellationCode> {
        match self {
            Self::Canceled(reasons) => reasons.iter().find(|(n, _)| *n == name).map(|(_, r)| r),
            Self::Store(_) => None,
        }
    }
}

impl<N> From<TransactError<N>> for StoreError {
    fn from(error: TransactError<N>) -> Self {
        match error {
            TransactError::Canceled(reasons) => Self::TransactionCanceled {
                reasons: reasons.into_iter().map(|(_, reason)| reason).collect(),
            },
            TransactError::Store(error) => error,
        }
    }
}

/// A store failure, as the API answers it: 503 when the table is unreachable or throttling, else
/// 500.
impl From<StoreError> for crate::domain::error::ApiError {
    fn from(value: StoreError) -> Self {
        if value.is_unavailable() {
            Self::Unavailable(Box::new(value))
        } else {
            Self::Internal(Box::new(value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancellation_codes_are_parsed() {
        assert_eq!(
            CancellationCode::parse(Some("None")),
            CancellationCode::None
        );
        assert_eq!(CancellationCode::parse(None), CancellationCode::None);
        assert_eq!(
            CancellationCode::parse(Some("ConditionalCheckFailed")),
            CancellationCode::ConditionalCheckFailed
        );
        assert_eq!(
            CancellationCode::parse(Some("ThrottlingError")),
            CancellationCode::Throttling
        );
        assert_eq!(
            CancellationCode::parse(Some("ValidationError")),
            CancellationCode::Other("ValidationError".to_owned())
        );
    }

    #[test]
    fn conflicts_and_throttling_are_unavailable_but_conditions_are_not() {
        let conflict = StoreError::TransactionCanceled {
            reasons: vec![
                CancellationCode::None,
                CancellationCode::TransactionConflict,
            ],
        };
        assert!(conflict.is_unavailable());
        let condition = StoreError::TransactionCanceled {
            reasons: vec![
                CancellationCode::ConditionalCheckFailed,
                CancellationCode::None,
            ],
        };
        assert!(!condition.is_unavailable());
        assert!(!StoreError::ConditionFailed.is_unavailable());
    }
}
