//! The XML of the EC2 and IAM query protocols is written with quick-xml's
//! [`Writer`] into memory; this module holds the few shapes every body uses.

use std::{fmt::Display, io};

use quick_xml::{
    Writer,
    escape::escape,
    events::{BytesDecl, BytesText, Event},
};

/// A quick-xml writer into memory.
pub(crate) type XmlWriter = Writer<Vec<u8>>;

/// The XML that `write` writes, as text.
pub(crate) fn render(write: impl FnOnce(&mut XmlWriter) -> io::Result<()>) -> String {
    let mut writer = Writer::new(Vec::new());
    // Writing to memory cannot fail, and every event is made of `&str`.
    write(&mut writer).unwrap_or_else(|_| unreachable!("writing XML to memory"));
    String::from_utf8(writer.into_inner()).unwrap_or_else(|_| unreachable!("XML made of text"))
}

/// `<?xml version="1.0" encoding="UTF-8"?>` and a line break, as EC2 starts.
pub(crate) fn declaration(w: &mut XmlWriter) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.write_event(Event::Text(BytesText::from_escaped("\n")))
}

/// `<name>value</name>`, the value escaped by quick-xml's [`escape`] (`<`, `>`,
/// `&`, `'` and `"`, as AWS escapes them), named here because `BytesText::new`
/// does not promise to keep escaping quotes.
pub(crate) fn text(w: &mut XmlWriter, name: &str, value: impl Display) -> io::Result<()> {
    let value = value.to_string();
    w.create_element(name)
        .write_text_content(BytesText::from_escaped(escape(value.as_str())))?;
    Ok(())
}

/// `<name><item>a</item><item>b</item></name>`: an EC2 list of values.
pub(crate) fn items<T: Display>(
    w: &mut XmlWriter,
    name: &str,
    values: impl IntoIterator<Item = T>,
) -> io::Result<()> {
    w.create_element(name)
        .write_inner_content(|w| values.into_iter().try_for_each(|v| text(w, "item", v)))?;
    Ok(())
}

/// XML that [`render`] made earlier (an item of a listing), copied as it is: a
/// page is a slice of items rendered once per fleet.
pub(crate) fn rendered(w: &mut XmlWriter, xml: &str) {
    w.get_mut().extend_from_slice(xml.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_like_aws_escapes_it() {
        let xml = render(|w| {
            w.create_element("a").write_inner_content(|w| {
                text(w, "b", "x < y & \"z\" > 'w'")?;
                text(w, "empty", "")?;
                w.create_element("none").write_empty()?;
                items(w, "set", [1, 2])
            })?;
            Ok(())
        });
        assert_eq!(
            xml,
            "<a><b>x &lt; y &amp; &quot;z&quot; &gt; &apos;w&apos;</b><empty></empty><none/>\
             <set><item>1</item><item>2</item></set></a>"
        );
    }

    #[test]
    fn a_document_splices_rendered_items_under_a_namespaced_root() {
        let item = render(|w| text(w, "item", "ü & co"));
        let xml = render(|w| {
            declaration(w)?;
            w.create_element("R")
                .with_attribute(("xmlns", "http://ec2.amazonaws.com/doc/2016-11-15/"))
                .write_inner_content(|w| {
                    rendered(w, &item);
                    Ok(())
                })?;
            Ok(())
        });
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <R xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><item>ü &amp; co</item></R>"
        );
    }
}
