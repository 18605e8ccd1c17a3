//! Creates the SQS queue of the ingestion spool on the local server, as
//! template.yaml's `IngestSpoolQueue` is created on AWS.

use shared::spool::Spool;

/// Creates (or finds) `{prefix}ingest-spool` and returns the spool on it.
pub async fn create_spool(sdk: &aws_config::SdkConfig, prefix: &str) -> Result<Spool, String> {
    let client = aws_sdk_sqs::Client::new(sdk);
    let out = client
        .create_queue()
        .queue_name(format!("{prefix}ingest-spool"))
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
    let url = out
        .queue_url
        .ok_or_else(|| "CreateQueue returned no queue URL".to_string())?;
    Ok(Spool::new(client, url))
}
