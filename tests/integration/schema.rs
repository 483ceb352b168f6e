//! The table and stream that the local stack makes are the ones `template.yaml` defines.

use aws_sdk_dynamodb::types::{KeyType, ProjectionType, StreamViewType, TimeToLiveStatus};
use aws_sdk_kinesis::types::StreamMode;
use local_stack::Template;
use local_stack::template::KeyElement;

use crate::support;

fn keys(schema: &[aws_sdk_dynamodb::types::KeySchemaElement]) -> Vec<KeyElement> {
    schema
        .iter()
        .map(|k| KeyElement {
            attribute_name: k.attribute_name().to_owned(),
            key_type: k.key_type().as_str().to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn the_local_table_is_the_template_table() {
    let template = Template::of_this_repository().unwrap().table;
    let store = support::fresh_store().await;
    let client = support::dynamo().await;
    let table = client
        .describe_table()
        .table_name(store.table().as_str())
        .send()
        .await
        .unwrap()
        .table
        .unwrap();

    assert_eq!(keys(table.key_schema()), template.key_schema);
    let mut defined: Vec<(String, String)> = table
        .attribute_definitions()
        .iter()
        .map(|a| {
            (
                a.attribute_name().to_owned(),
                a.attribute_type().as_str().to_owned(),
            )
        })
        .collect();
    let mut expected: Vec<(String, String)> = template
        .attribute_definitions
        .iter()
        .map(|a| (a.attribute_name.clone(), a.attribute_type.clone()))
        .collect();
    defined.sort();
    expected.sort();
    assert_eq!(defined, expected);

    let gsis = table.global_secondary_indexes();
    assert_eq!(gsis.len(), template.global_secondary_indexes.len());
    for want in &template.global_secondary_indexes {
        let got = gsis
            .iter()
            .find(|g| g.index_name() == Some(want.index_name.as_str()))
            .unwrap();
        assert_eq!(
            keys(got.key_schema()),
            want.key_schema,
            "{}",
            want.index_name
        );
        let projection = got.projection().and_then(|p| p.projection_type()).unwrap();
        assert_eq!(projection.as_str(), want.projection.projection_type);
    }
    let lsis = table.local_secondary_indexes();
    assert_eq!(lsis.len(), template.local_secondary_indexes.len());
    for want in &template.local_secondary_indexes {
        let got = lsis
            .iter()
            .find(|l| l.index_name() == Some(want.index_name.as_str()))
            .unwrap();
        assert_eq!(
            keys(got.key_schema()),
            want.key_schema,
            "{}",
            want.index_name
        );
        assert_eq!(
            got.projection().and_then(|p| p.projection_type()),
            Some(&ProjectionType::All)
        );
    }
    // The range key of each LSI is a table attribute, the hash key the table's own.
    assert!(
        lsis.iter()
            .all(|l| l.key_schema()[0].key_type() == &KeyType::Hash)
    );

    let stream = table.stream_specification().unwrap();
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type(),
        Some(&StreamViewType::NewAndOldImages)
    );
    assert!(table.latest_stream_arn().is_some());

    let ttl = client
        .describe_time_to_live()
        .table_name(store.table().as_str())
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name(), Some("expiresAt"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[tokio::test]
async fn the_local_event_stream_is_on_demand_as_in_the_template() {
    let template = Template::of_this_repository().unwrap().stream;
    let client = support::kinesis().await;
    let name = support::unique_name("events");
    local_stack::create_stream(&client, &name, &template)
        .await
        .unwrap();
    assert!(local_stack::stream_exists(&client, &name).await.unwrap());
    let summary = client
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap();
    assert_eq!(
        summary.stream_mode_details().map(|m| m.stream_mode()),
        Some(&StreamMode::OnDemand)
    );
}
