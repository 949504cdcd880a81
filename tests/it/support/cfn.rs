//! A CloudFormation template evaluated as CloudFormation would for one stack:
//! the conditions, the rules and the intrinsic functions the project's templates use
//! (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::If`, `Fn::Split`, `Fn::Join`,
//! `Fn::Select`, `Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`, `Condition`),
//! short form or long, resolved to plain JSON for an account, a region and
//! parameter values.
//!
//! A resource's `Ref` is `physical-id-of-{LogicalId}` and its attribute
//! `{Attribute}-of-{LogicalId}` (`Arn-of-RefreshEventsDeadLetterQueue`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};
use serde_norway::Value as Yaml;

/// A template with the values one stack of it has.
pub struct Stack<'a> {
    template: &'a Yaml,
    account: String,
    region: String,
    parameters: BTreeMap<String, String>,
}

/// An intrinsic function call, short form (`!Ref X`) or long (`Ref: X`,
/// `Fn::GetAtt: [...]`): its name without `Fn::`, and its argument.
pub fn intrinsic(value: &Yaml) -> Option<(String, &Yaml)> {
    match value {
        Yaml::Tagged(tagged) => Some((
            tagged.tag.to_string().trim_start_matches('!').to_owned(),
            &tagged.value,
        )),
        Yaml::Mapping(m) if m.len() == 1 => {
            let (name, argument) = m.iter().next()?;
            let name = name.as_str()?;
            (name == "Ref" || name.starts_with("Fn::"))
                .then(|| (name.trim_start_matches("Fn::").to_owned(), argument))
        }
        _ => None,
    }
}

/// The resources of one type, by logical ID.
pub fn resources_of<'a>(template: &'a Yaml, ty: &str) -> BTreeMap<&'a str, &'a Yaml> {
    template["Resources"]
        .as_mapping()
        .expect("Resources is a mapping")
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Yaml::as_str) == Some(ty))
        .map(|(id, r)| (id.as_str().expect("logical IDs are strings"), r))
        .collect()
}

/// `template` as CloudFormation's JSON: every short-form tag in long form
/// (`!Ref X` as `{"Ref": "X"}`, `!GetAtt R.A` as `{"Fn::GetAtt": ["R", "A"]}`,
/// `!Condition C` as `{"Condition": "C"}`, `!Sub ...` as `{"Fn::Sub": ...}`).
pub fn long_form(template: &Yaml) -> Json {
    match template {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(*b),
        Yaml::Number(n) => serde_json::to_value(n).expect("a number"),
        Yaml::String(s) => Json::String(s.clone()),
        Yaml::Sequence(items) => Json::Array(items.iter().map(long_form).collect()),
        Yaml::Mapping(m) => Json::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().expect("string keys").to_owned(), long_form(v)))
                .collect(),
        ),
        Yaml::Tagged(tagged) => {
            let name = tagged.tag.to_string();
            let name = name.trim_start_matches('!');
            let argument = match (name, &tagged.value) {
                ("GetAtt", Yaml::String(path)) => {
                    let (resource, attribute) = path
                        .split_once('.')
                        .unwrap_or_else(|| panic!("!GetAtt {path}: not Resource.Attribute"));
                    Json::from([resource, attribute])
                }
                (_, value) => long_form(value),
            };
            let key = match name {
                "Ref" | "Condition" => name.to_owned(),
                _ => format!("Fn::{name}"),
            };
            Json::Object(Map::from_iter([(key, argument)]))
        }
    }
}

fn arguments<'y>(function: &str, argument: &'y Yaml) -> &'y [Yaml] {
    argument
        .as_sequence()
        .unwrap_or_else(|| panic!("{function} takes a list: {argument:?}"))
}

impl<'a> Stack<'a> {
    /// A stack of `template` in `account` and `region` (partition `aws`), every
    /// parameter at its default.
    pub fn new(template: &'a Yaml, account: &str, region: &str) -> Self {
        Self {
            template,
            account: account.to_owned(),
            region: region.to_owned(),
            parameters: BTreeMap::new(),
        }
    }

    /// The same stack with parameter `name` set to `value`.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        assert!(
            self.template["Parameters"].get(name).is_some(),
            "the template has no parameter {name}"
        );
        self.parameters.insert(name.to_owned(), value.to_owned());
        self
    }

    /// What `Ref name` is in this stack.
    pub fn reference(&self, name: &str) -> Json {
        match name {
            "AWS::AccountId" => return self.account.clone().into(),
            "AWS::Region" => return self.region.clone().into(),
            "AWS::Partition" => return "aws".into(),
            "AWS::URLSuffix" => return "amazonaws.com".into(),
            _ => {}
        }
        if let Some(value) = self.parameters.get(name) {
            return value.clone().into();
        }
        match self.template["Parameters"].get(name) {
            Some(parameter) => match parameter.get("Default") {
                Some(Yaml::String(s)) => s.clone().into(),
                Some(Yaml::Number(n)) => n.to_string().into(),
                _ => panic!("parameter {name} needs a value"),
            },
            None => {
                assert!(
                    self.template["Resources"].get(name).is_some(),
                    "Ref {name}: no such parameter or resource"
                );
                format!("physical-id-of-{name}").into()
            }
        }
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Json {
        assert!(
            self.template["Resources"].get(resource).is_some(),
            "GetAtt {resource}.{attribute}: no such resource"
        );
        assert!(
            self.creates(resource),
            "GetAtt {resource}.{attribute}: the resource is not created in this stack"
        );
        format!("{attribute}-of-{resource}").into()
    }

    /// Whether the template's condition `name` holds in this stack.
    pub fn condition(&self, name: &str) -> bool {
        let condition = self.template["Conditions"]
            .get(name)
            .unwrap_or_else(|| panic!("no condition {name}"));
        self.holds(condition)
    }

    fn holds(&self, condition: &Yaml) -> bool {
        let Some((function, argument)) = intrinsic(condition).or_else(|| {
            // `Condition: Name` inside a condition, long form.
            condition
                .as_mapping()
                .filter(|m| m.len() == 1)
                .and_then(|m| m.get("Condition"))
                .map(|name| ("Condition".to_owned(), name))
        }) else {
            panic!("not a condition: {condition:?}")
        };
        match function.as_str() {
            "Condition" => self.condition(argument.as_str().expect("a condition name")),
            "Equals" => {
                let [a, b] = arguments("Equals", argument) else {
                    panic!("Equals takes two arguments: {argument:?}");
                };
                // CloudFormation compares the values as strings: a Number
                // parameter's `-1` equals the literal -1.
                let text = |v: &Yaml| {
                    self.resolve(v).map(|v| match v {
                        Json::String(s) => s,
                        other => other.to_string(),
                    })
                };
                text(a) == text(b)
            }
            "Not" => {
                let [inner] = arguments("Not", argument) else {
                    panic!("Not takes one argument: {argument:?}");
                };
                !self.holds(inner)
            }
            "And" => arguments("And", argument).iter().all(|c| self.holds(c)),
            "Or" => arguments("Or", argument).iter().any(|c| self.holds(c)),
            other => panic!("cannot evaluate condition function {other}"),
        }
    }

    /// The template's rules this stack's parameters break: the logical ID of
    /// each rule whose `RuleCondition` holds (or that has none) and one of
    /// whose assertions does not, in the template's order. (The rules here use
    /// the condition functions only: `Fn::Equals`, `Fn::Not`, `Fn::And`,
    /// `Fn::Or` over `Ref`s.)
    pub fn broken_rules(&self) -> Vec<String> {
        let Some(rules) = self.template.get("Rules").and_then(Yaml::as_mapping) else {
            return Vec::new();
        };
        rules
            .iter()
            .filter(|(_, rule)| rule.get("RuleCondition").is_none_or(|c| self.holds(c)))
            .filter(|(_, rule)| {
                rule["Assertions"]
                    .as_sequence()
                    .expect("a rule's Assertions are a list")
                    .iter()
                    .any(|assertion| !self.holds(&assertion["Assert"]))
            })
            .map(|(id, _)| id.as_str().expect("rule IDs are strings").to_owned())
            .collect()
    }

    /// `value` with every intrinsic function evaluated; `None` where it is
    /// `AWS::NoValue` (a mapping drops that key, a list that item).
    pub fn resolve(&self, value: &Yaml) -> Option<Json> {
        if let Some((function, argument)) = intrinsic(value) {
            return self.call(&function, argument);
        }
        Some(match value {
            Yaml::Null => Json::Null,
            Yaml::Bool(b) => Json::Bool(*b),
            Yaml::Number(n) => serde_json::to_value(n).expect("a number"),
            Yaml::String(s) => Json::String(s.clone()),
            Yaml::Sequence(items) => {
                Json::Array(items.iter().filter_map(|v| self.resolve(v)).collect())
            }
            Yaml::Mapping(m) => Json::Object(
                m.iter()
                    .filter_map(|(k, v)| {
                        let key = k.as_str().expect("string keys").to_owned();
                        self.resolve(v).map(|v| (key, v))
                    })
                    .collect::<Map<_, _>>(),
            ),
            Yaml::Tagged(t) => panic!("unknown tag {}", t.tag),
        })
    }

    /// `resolve` for a value that is never `AWS::NoValue`.
    pub fn value(&self, value: &Yaml) -> Json {
        self.resolve(value)
            .unwrap_or_else(|| panic!("{value:?} is AWS::NoValue"))
    }

    fn text(&self, value: &Yaml) -> String {
        match self.value(value) {
            Json::String(s) => s,
            Json::Number(n) => n.to_string(),
            other => panic!("not a string: {other}"),
        }
    }

    fn call(&self, function: &str, argument: &Yaml) -> Option<Json> {
        Some(match function {
            "Ref" => {
                let name = argument.as_str().expect("Ref takes a name");
                if name == "AWS::NoValue" {
                    return None;
                }
                self.reference(name)
            }
            "GetAtt" => {
                let parts: Vec<String> = match argument {
                    Yaml::String(s) => s.splitn(2, '.').map(str::to_owned).collect(),
                    Yaml::Sequence(items) => items.iter().map(|i| self.text(i)).collect(),
                    other => panic!("GetAtt {other:?}"),
                };
                let [resource, attribute] = parts.as_slice() else {
                    panic!("GetAtt takes Resource.Attribute: {argument:?}");
                };
                self.attribute(resource, attribute)
            }
            "Sub" => {
                let (text, variables) = match argument {
                    Yaml::String(s) => (s.as_str(), BTreeMap::new()),
                    Yaml::Sequence(items) => {
                        let [text, variables] = items.as_slice() else {
                            panic!("Sub takes a string and a mapping: {argument:?}");
                        };
                        let variables = variables
                            .as_mapping()
                            .expect("Sub variables")
                            .iter()
                            .map(|(k, v)| (k.as_str().unwrap().to_owned(), self.text(v)))
                            .collect();
                        (text.as_str().expect("Sub's string"), variables)
                    }
                    other => panic!("Sub {other:?}"),
                };
                Json::String(self.substitute(text, &variables))
            }
            "If" => {
                let [condition, then, otherwise] = arguments("If", argument) else {
                    panic!("If takes three arguments: {argument:?}");
                };
                if self.condition(condition.as_str().expect("a condition name")) {
                    return self.resolve(then);
                }
                return self.resolve(otherwise);
            }
            "Split" => {
                let [delimiter, text] = arguments("Split", argument) else {
                    panic!("Split takes two arguments: {argument:?}");
                };
                let delimiter = delimiter.as_str().expect("a delimiter");
                Json::Array(
                    self.text(text)
                        .split(delimiter)
                        .map(|s| Json::String(s.to_owned()))
                        .collect(),
                )
            }
            "Join" => {
                let [delimiter, items] = arguments("Join", argument) else {
                    panic!("Join takes two arguments: {argument:?}");
                };
                let items = self.value(items);
                let items: Vec<&str> = items
                    .as_array()
                    .expect("Join takes a list")
                    .iter()
                    .map(|i| i.as_str().expect("strings"))
                    .collect();
                Json::String(items.join(delimiter.as_str().expect("a delimiter")))
            }
            "Select" => {
                let [index, items] = arguments("Select", argument) else {
                    panic!("Select takes two arguments: {argument:?}");
                };
                let index: usize = self.text(index).parse().expect("an index");
                self.value(items)
                    .as_array()
                    .expect("Select takes a list")
                    .get(index)
                    .cloned()
                    .expect("an index within the list")
            }
            other => panic!("cannot evaluate Fn::{other}"),
        })
    }

    /// `${Name}`, `${Resource.Attribute}` and `${!Literal}` of a `Fn::Sub` string.
    fn substitute(&self, text: &str, variables: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("${") {
            let end = at + rest[at..].find('}').expect("a closed ${...}");
            out.push_str(&rest[..at]);
            let name = &rest[at + 2..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = variables.get(name) {
                out.push_str(value);
            } else {
                let value = match name.split_once('.') {
                    Some((resource, attribute)) if !name.starts_with("AWS::") => {
                        self.attribute(resource, attribute)
                    }
                    _ => self.reference(name),
                };
                out.push_str(value.as_str().expect("a string to substitute"));
            }
            rest = &rest[end + 1..];
        }
        out + rest
    }

    /// Whether this stack creates the resource `logical_id` (its `Condition`,
    /// if any, holds).
    pub fn creates(&self, logical_id: &str) -> bool {
        let resource = self.template["Resources"]
            .get(logical_id)
            .unwrap_or_else(|| panic!("no resource {logical_id}"));
        resource
            .get("Condition")
            .is_none_or(|c| self.condition(c.as_str().expect("a condition name")))
    }

    /// The resource `logical_id` as this stack creates it (`Type`,
    /// `Properties`, ...), or `None` when its `Condition` does not hold.
    pub fn resource(&self, logical_id: &str) -> Option<Json> {
        self.creates(logical_id)
            .then(|| self.value(&self.template["Resources"][logical_id]))
    }

    /// A created resource's properties.
    pub fn properties(&self, logical_id: &str) -> Json {
        self.resource(logical_id)
            .unwrap_or_else(|| panic!("{logical_id} is not created in this stack"))
            .get("Properties")
            .cloned()
            .unwrap_or_else(|| Json::Object(Map::new()))
    }

    /// Every resource this stack creates: logical ID to resource.
    pub fn resources(&self) -> BTreeMap<String, Json> {
        self.template["Resources"]
            .as_mapping()
            .expect("Resources is a mapping")
            .keys()
            .map(|id| id.as_str().expect("logical IDs are strings"))
            .filter_map(|id| self.resource(id).map(|r| (id.to_owned(), r)))
            .collect()
    }

    /// The created resources of type `ty`: logical ID to properties.
    pub fn resources_of(&self, ty: &str) -> BTreeMap<String, Json> {
        self.resources()
            .into_iter()
            .filter(|(_, r)| r["Type"] == ty)
            .map(|(id, r)| (id, r.get("Properties").cloned().unwrap_or_default()))
            .collect()
    }

    /// The outputs this stack has: name to value.
    pub fn outputs(&self) -> BTreeMap<String, Json> {
        self.template["Outputs"]
            .as_mapping()
            .expect("Outputs is a mapping")
            .iter()
            .filter(|(_, o)| {
                o.get("Condition")
                    .is_none_or(|c| self.condition(c.as_str().expect("a condition name")))
            })
            .map(|(name, o)| {
                (
                    name.as_str().expect("output names").to_owned(),
                    self.value(&o["Value"]),
                )
            })
            .collect()
    }
}

/// A policy field that is one string or a list of them.
pub fn strings(value: &Json) -> BTreeSet<String> {
    match value {
        Json::String(s) => BTreeSet::from([s.clone()]),
        Json::Array(items) => items
            .iter()
            .map(|i| i.as_str().expect("strings").to_owned())
            .collect(),
        other => panic!("not strings: {other}"),
    }
}

/// The actions a role's inline policies allow, each with its resources; every
/// statement allows actions on resources (no Deny, NotAction or NotResource).
pub fn granted(role: &Json) -> BTreeMap<String, BTreeSet<String>> {
    let mut granted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for policy in role["Policies"].as_array().expect("inline policies") {
        for statement in policy["PolicyDocument"]["Statement"]
            .as_array()
            .expect("statements")
        {
            assert_eq!(statement["Effect"], "Allow", "{statement}");
            for field in ["NotAction", "NotResource", "NotPrincipal"] {
                assert!(statement.get(field).is_none(), "{statement}");
            }
            for action in strings(&statement["Action"]) {
                granted
                    .entry(action)
                    .or_default()
                    .extend(strings(&statement["Resource"]));
            }
        }
    }
    granted
}
