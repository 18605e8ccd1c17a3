//! Creates the DynamoDB tables on a local server from the definitions in
//! `template.yaml`, so the template is the one source of truth for keys and
//! indexes. The template is compiled in, so a built runner always matches the
//! layout its handlers expect.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde_yaml_ng::Value;
use shared::store::{Tables, TABLE_BINDINGS};

pub const TEMPLATE_YAML: &str = include_str!("../../../template.yaml");

/// One `AWS::DynamoDB::Table` resource of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub logical_id: String,
    pub attributes: Vec<(String, String)>,
    pub key_schema: Vec<(String, String)>,
    pub indexes: Vec<IndexDef>,
    pub ttl_attribute: Option<String>,
    pub stream_view: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexDef {
    pub name: String,
    pub key_schema: Vec<(String, String)>,
    pub projection: String,
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("creating table {table}: {detail}")]
    Create { table: String, detail: String },
    #[error("table {table} exists with a different layout ({detail}); it is stale: delete it or restart the local server")]
    Stale { table: String, detail: String },
}

fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping()?.get(Value::String(key.to_string()))
}

fn text(v: &Value, key: &str, ctx: &str) -> Result<String, TableError> {
    field(v, key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| TableError::Template(format!("{ctx}: missing {key}")))
}

fn pairs(
    v: Option<&Value>,
    a: &str,
    b: &str,
    ctx: &str,
) -> Result<Vec<(String, String)>, TableError> {
    v.and_then(Value::as_sequence)
        .ok_or_else(|| TableError::Template(format!("{ctx}: missing list")))?
        .iter()
        .map(|e| Ok((text(e, a, ctx)?, text(e, b, ctx)?)))
        .collect()
}

/// Every table resource in the template.
pub fn table_defs(template: &str) -> Result<Vec<TableDef>, TableError> {
    let doc: Value =
        serde_yaml_ng::from_str(template).map_err(|e| TableError::Template(e.to_string()))?;
    let resources = field(&doc, "Resources")
        .and_then(Value::as_mapping)
        .ok_or_else(|| TableError::Template("no Resources".into()))?;
    let mut defs = Vec::new();
    for (id, res) in resources {
        if field(res, "Type").and_then(Value::as_str) != Some("AWS::DynamoDB::Table") {
            continue;
        }
        let logical_id = id.as_str().unwrap_or_default().to_string();
        let props = field(res, "Properties")
            .ok_or_else(|| TableError::Template(format!("{logical_id}: no Properties")))?;
        let mut indexes = Vec::new();
        for gsi in field(props, "GlobalSecondaryIndexes")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let ctx = format!("{logical_id} index");
            let projection = field(gsi, "Projection")
                .ok_or_else(|| TableError::Template(format!("{ctx}: no Projection")))?;
            indexes.push(IndexDef {
                name: text(gsi, "IndexName", &ctx)?,
                key_schema: pairs(field(gsi, "KeySchema"), "AttributeName", "KeyType", &ctx)?,
                projection: text(projection, "ProjectionType", &ctx)?,
                non_key_attributes: field(projection, "NonKeyAttributes")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            });
        }
        defs.push(TableDef {
            attributes: pairs(
                field(props, "AttributeDefinitions"),
                "AttributeName",
                "AttributeType",
                &logical_id,
            )?,
            key_schema: pairs(
                field(props, "KeySchema"),
                "AttributeName",
                "KeyType",
                &logical_id,
            )?,
            indexes,
            ttl_attribute: field(props, "TimeToLiveSpecification")
                .and_then(|t| field(t, "AttributeName"))
                .and_then(Value::as_str)
                .map(str::to_string),
            stream_view: field(props, "StreamSpecification")
                .and_then(|s| field(s, "StreamViewType"))
                .and_then(Value::as_str)
                .map(str::to_string),
            logical_id,
        });
    }
    Ok(defs)
}

fn key_elements(schema: &[(String, String)]) -> Vec<KeySchemaElement> {
    schema
        .iter()
        .map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::from(kind.as_str()))
                .build()
                .expect("key schema element has both fields")
        })
        .collect()
}

/// Creates every table of the template under `prefix` (names as
/// [`Tables::with_prefix`] gives them). A table that already exists is kept if
/// its keys and indexes match, and reported as stale otherwise.
pub async fn create_tables(client: &Client, prefix: &str) -> Result<Tables, TableError> {
    let tables = Tables::with_prefix(prefix);
    let defs = table_defs(TEMPLATE_YAML)?;
    for binding in TABLE_BINDINGS {
        let def = defs
            .iter()
            .find(|d| d.logical_id == binding.logical_id)
            .ok_or_else(|| {
                TableError::Template(format!("no table resource {}", binding.logical_id))
            })?;
        let name = tables
            .name_for(binding.logical_id)
            .expect("every binding has a name")
            .to_string();
        create_one(client, &name, def).await?;
    }
    Ok(tables)
}

async fn create_one(client: &Client, name: &str, def: &TableDef) -> Result<(), TableError> {
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_elements(&def.key_schema)));
    for (attr, kind) in &def.attributes {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()
                .expect("attribute definition has both fields"),
        );
    }
    for index in &def.indexes {
        let mut projection =
            Projection::builder().projection_type(ProjectionType::from(index.projection.as_str()));
        for attr in &index.non_key_attributes {
            projection = projection.non_key_attributes(attr);
        }
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .set_key_schema(Some(key_elements(&index.key_schema)))
                .projection(projection.build())
                .build()
                .expect("index has a name and keys"),
        );
    }
    if let Some(view) = &def.stream_view {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
                .build()
                .expect("stream spec has its required field"),
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(err) => {
            use aws_sdk_dynamodb::error::ProvideErrorMetadata;
            if err.code() == Some("ResourceInUseException") {
                return check_existing(client, name, def).await;
            }
            return Err(TableError::Create {
                table: name.to_string(),
                detail: aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string(),
            });
        }
    }
    if let Some(attr) = &def.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attr)
                    .enabled(true)
                    .build()
                    .expect("ttl spec has its fields"),
            )
            .send()
            .await
            .map_err(|e| TableError::Create {
                table: name.to_string(),
                detail: aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string(),
            })?;
    }
    Ok(())
}

async fn check_existing(client: &Client, name: &str, def: &TableDef) -> Result<(), TableError> {
    let out = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(|e| TableError::Create {
            table: name.to_string(),
            detail: aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string(),
        })?;
    let table = out.table.ok_or_else(|| TableError::Create {
        table: name.to_string(),
        detail: "DescribeTable returned no table".into(),
    })?;
    let keys: Vec<(String, String)> = table
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_string(),
                k.key_type().as_str().to_string(),
            )
        })
        .collect();
    if keys != def.key_schema {
        return Err(TableError::Stale {
            table: name.to_string(),
            detail: format!("key schema {keys:?}, template wants {:?}", def.key_schema),
        });
    }
    let mut have: Vec<String> = table
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name().map(str::to_string))
        .collect();
    let mut want: Vec<String> = def.indexes.iter().map(|i| i.name.clone()).collect();
    have.sort();
    want.sort();
    if have != want {
        return Err(TableError::Stale {
            table: name.to_string(),
            detail: format!("indexes {have:?}, template wants {want:?}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_defines_every_table_the_store_uses() {
        let defs = table_defs(TEMPLATE_YAML).unwrap();
        for binding in TABLE_BINDINGS {
            assert!(
                defs.iter().any(|d| d.logical_id == binding.logical_id),
                "template lacks {}",
                binding.logical_id
            );
        }
        // And every table of the template is one the store knows.
        for def in &defs {
            assert!(
                TABLE_BINDINGS
                    .iter()
                    .any(|b| b.logical_id == def.logical_id),
                "template table {} has no binding in shared::store",
                def.logical_id
            );
        }
        let instances = defs
            .iter()
            .find(|d| d.logical_id == "InstancesTable")
            .unwrap();
        let names: Vec<&str> = instances.indexes.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["by-org", "by-poll-interval", "by-store"]);
        assert_eq!(
            instances.key_schema,
            [("id".to_string(), "HASH".to_string())]
        );
    }
}
