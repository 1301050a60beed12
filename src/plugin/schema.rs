//! tf-provider's schema and diagnostic types in the protocol's wire form.
//! Write-only attributes (names ending in `_wo`) are marked so; Terraform
//! versions before 1.11 ignore the mark, which is why the plugin layer refuses
//! their values at validation there (see `service`).

use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, Description, NestedBlock, Schema,
    StringKind,
};
use tf_provider::{AttributePath, AttributePathStep, Diagnostics};

use super::proto::tfplugin6 as tf;
use super::values::is_write_only;

pub fn schema(schema: &Schema) -> tf::Schema {
    tf::Schema {
        version: schema.version,
        block: Some(block(&schema.block)),
    }
}

fn kind(description: &Description) -> i32 {
    match description.kind {
        StringKind::Plain => tf::StringKind::Plain as i32,
        StringKind::Markdown => tf::StringKind::Markdown as i32,
    }
}

fn block(block: &Block) -> tf::schema::Block {
    let mut names: Vec<&String> = block.attributes.keys().collect();
    names.sort();
    let mut block_names: Vec<&String> = block.blocks.keys().collect();
    block_names.sort();
    tf::schema::Block {
        version: block.version,
        attributes: names
            .into_iter()
            .map(|name| attribute(name, &block.attributes[name]))
            .collect(),
        block_types: block_names
            .into_iter()
            .map(|name| nested_block(name, &block.blocks[name]))
            .collect(),
        description: block.description.content.clone(),
        description_kind: kind(&block.description),
        deprecated: block.deprecated,
    }
}

fn nested_block(name: &str, nested: &NestedBlock) -> tf::schema::NestedBlock {
    use tf::schema::nested_block::NestingMode;
    let (nesting, inner, min_items, max_items) = match nested {
        NestedBlock::Single(b) => (NestingMode::Single, b, 1, 1),
        // No limit, written as tf-provider wrote it (the schema Terraform
        // shows stays the same as 0.1.0's).
        NestedBlock::List(b) => (NestingMode::List, b, 0, i64::MAX),
        NestedBlock::Set(b) => (NestingMode::Set, b, 0, i64::MAX),
        NestedBlock::Map(b) => (NestingMode::Map, b, 0, 0),
        NestedBlock::Group(b) => (NestingMode::Group, b, 0, 0),
        // At most one: a list of at most one item (tf-provider's encoding,
        // which the resources' serde helpers expect).
        NestedBlock::Optional(b) => (NestingMode::List, b, 0, 1),
    };
    tf::schema::NestedBlock {
        type_name: name.to_string(),
        block: Some(block(inner)),
        nesting: nesting as i32,
        min_items,
        max_items,
    }
}

fn attribute(name: &str, attr: &Attribute) -> tf::schema::Attribute {
    use tf::schema::object::NestingMode;
    let nested = |attrs: &std::collections::HashMap<String, Attribute>, nesting: NestingMode| {
        let mut names: Vec<&String> = attrs.keys().collect();
        names.sort();
        tf::schema::Object {
            attributes: names.into_iter().map(|n| attribute(n, &attrs[n])).collect(),
            nesting: nesting as i32,
        }
    };
    let nested_type = match &attr.attr_type {
        AttributeType::AttributeSingle(a) => Some(nested(a, NestingMode::Single)),
        AttributeType::AttributeList(a) => Some(nested(a, NestingMode::List)),
        AttributeType::AttributeSet(a) => Some(nested(a, NestingMode::Set)),
        AttributeType::AttributeMap(a) => Some(nested(a, NestingMode::Map)),
        _ => None,
    };
    let optional = matches!(
        attr.constraint,
        AttributeConstraint::Optional | AttributeConstraint::OptionalComputed
    );
    let computed = matches!(
        attr.constraint,
        AttributeConstraint::Computed | AttributeConstraint::OptionalComputed
    );
    tf::schema::Attribute {
        name: name.to_string(),
        // A nested attribute's type is given by `nested_type` only.
        r#type: if nested_type.is_some() {
            Vec::new()
        } else {
            attr.attr_type.to_string().into_bytes()
        },
        nested_type,
        description: attr.description.content.clone(),
        required: attr.constraint == AttributeConstraint::Required,
        optional,
        computed,
        sensitive: attr.sensitive,
        description_kind: kind(&attr.description),
        deprecated: attr.deprecated,
        write_only: is_write_only(name),
    }
}

/// Schema rules the plugin layer relies on, checked once at start-up: a
/// write-only attribute is a configurable primitive, never computed.
pub fn check_write_only(type_name: &str, block: &Block, at: &str, diags: &mut Diagnostics) {
    for (name, attr) in &block.attributes {
        if is_write_only(name)
            && (matches!(
                attr.constraint,
                AttributeConstraint::Computed | AttributeConstraint::OptionalComputed
            ) || !super::values::write_only_type_ok(&attr.attr_type))
        {
            diags.root_error(
                format!(
                    "{type_name}: write-only attribute {at}{name} is computed or not a primitive"
                ),
                "a write-only attribute is set in the configuration only",
            );
        }
    }
    for (name, nested) in &block.blocks {
        let inner = crate::tfschema::nested_inner(nested);
        check_write_only(type_name, inner, &format!("{at}{name}."), diags);
    }
}

pub fn diagnostics(diags: Diagnostics) -> Vec<tf::Diagnostic> {
    use tf::diagnostic::Severity;
    let one = |severity: Severity| {
        move |d: tf_provider::Diagnostic| tf::Diagnostic {
            severity: severity as i32,
            summary: d.summary.into_owned(),
            detail: d.detail.into_owned(),
            attribute: (!d.attribute.steps.is_empty()).then(|| path(d.attribute)),
        }
    };
    diags
        .errors
        .into_iter()
        .map(one(Severity::Error))
        .chain(diags.warnings.into_iter().map(one(Severity::Warning)))
        .collect()
}

pub fn path(path: AttributePath) -> tf::AttributePath {
    use tf::attribute_path::step::Selector;
    tf::AttributePath {
        steps: path
            .steps
            .into_iter()
            .map(|step| tf::attribute_path::Step {
                selector: Some(match step {
                    AttributePathStep::Attribute(name) => {
                        Selector::AttributeName(name.into_owned())
                    }
                    AttributePathStep::Key(key) => Selector::ElementKeyString(key.into_owned()),
                    AttributePathStep::Index(i) => Selector::ElementKeyInt(i),
                }),
            })
            .collect(),
    }
}
