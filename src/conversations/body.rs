//! The body of a comment or a chat message: paragraphs of inline parts (text with bold, italic
//! and code marks, a mention of a user, a link). Never HTML: a client renders the parts itself.
//!
//! A body arrives as JSON and is parsed into [`Body`] with every bound checked before anything
//! is stored: paragraphs, parts, characters, mentions, link length and scheme. Each bound is
//! one a JSON Schema states (counts per array, lengths in characters), except the character
//! budget of the whole body and the distinct users mentioned, which span parts.

use serde::{Deserialize, Serialize};

/// Most paragraphs in a body.
pub const MAX_PARAGRAPHS: usize = 50;
/// Most inline parts in one paragraph.
pub const MAX_PARAGRAPH_PARTS: usize = 50;
/// Most inline parts in a body (all paragraphs together): what the two bounds above allow.
pub const MAX_PARTS: usize = MAX_PARAGRAPHS * MAX_PARAGRAPH_PARTS;
/// Most characters of text in a body (all parts together).
pub const MAX_TEXT_CHARS: usize = 8_000;
/// Most distinct users mentioned in a body.
pub const MAX_MENTIONS: usize = 20;
/// Longest link URL, in characters.
pub const MAX_URL_CHARS: usize = 2_048;

/// A structured body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// The paragraphs, in order.
    pub content: Vec<Paragraph>,
}

/// One paragraph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paragraph {
    /// Always `paragraph` (room for other block kinds later).
    #[serde(rename = "type")]
    pub kind: ParagraphKind,
    /// Its inline parts.
    pub children: Vec<Inline>,
}

/// The kinds of block a body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParagraphKind {
    /// A paragraph of inline parts.
    Paragraph,
}

/// An inline part: text (the default when `type` is absent), a mention or a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inline {
    /// `text` (default), `mention` or `link`.
    #[serde(rename = "type", default, skip_serializing_if = "InlineKind::is_text")]
    pub kind: InlineKind,
    /// The text of a text part, or a link's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Bold mark (text parts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bold: bool,
    /// Italic mark (text parts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub italic: bool,
    /// Code mark (text parts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub code: bool,
    /// The user a mention names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A link's URL (`http` or `https`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The kinds of inline part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InlineKind {
    /// Text, with optional marks.
    #[default]
    Text,
    /// A mention of a user: `{type: "mention", user}`.
    Mention,
    /// A link: `{type: "link", url, text?}`.
    Link,
}

impl InlineKind {
    fn is_text(&self) -> bool {
        *self == InlineKind::Text
    }
}

impl Body {
    /// Checks every bound and the shape of each part; the message says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.content.is_empty() {
            return Err("a body needs at least one paragraph".into());
        }
        if self.content.len() > MAX_PARAGRAPHS {
            return Err(format!("at most {MAX_PARAGRAPHS} paragraphs"));
        }
        if self
            .content
            .iter()
            .any(|p| p.children.len() > MAX_PARAGRAPH_PARTS)
        {
            return Err(format!(
                "at most {MAX_PARAGRAPH_PARTS} inline parts in a paragraph"
            ));
        }
        let mut chars = 0usize;
        for part in self.content.iter().flat_map(|p| &p.children) {
            if let Some(text) = &part.text {
                if text
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t')
                {
                    return Err("text holds a control character".into());
                }
                chars += text.chars().count();
            }
            let marks = part.bold || part.italic || part.code;
            match part.kind {
                InlineKind::Text => {
                    if part.text.is_none() || part.user.is_some() || part.url.is_some() {
                        return Err(
                            "a text part has `text` and nothing of a mention or link".into()
                        );
                    }
                }
                InlineKind::Mention => {
                    let Some(user) = &part.user else {
                        return Err("a mention names its `user`".into());
                    };
                    crate::auth::validate_sub(user).map_err(|e| format!("mention: {e}"))?;
                    if part.text.is_some() || part.url.is_some() || marks {
                        return Err("a mention has only `user`".into());
                    }
                }
                InlineKind::Link => {
                    let Some(url) = &part.url else {
                        return Err("a link has a `url`".into());
                    };
                    check_url(url)?;
                    if part.user.is_some() || marks {
                        return Err("a link has `url` and an optional `text`".into());
                    }
                }
            }
        }
        if chars > MAX_TEXT_CHARS {
            return Err(format!("at most {MAX_TEXT_CHARS} characters of text"));
        }
        if self.content.iter().all(|p| p.children.is_empty()) {
            return Err("a body needs some content".into());
        }
        if self.mentions().len() > MAX_MENTIONS {
            return Err(format!("at most {MAX_MENTIONS} distinct users mentioned"));
        }
        Ok(())
    }

    /// The distinct users mentioned, in order of first mention.
    pub fn mentions(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for part in self.content.iter().flat_map(|p| &p.children) {
            if let (InlineKind::Mention, Some(user)) = (part.kind, &part.user) {
                if !out.contains(user) {
                    out.push(user.clone());
                }
            }
        }
        out
    }

    /// The body as plain text (mentions as `@user`, paragraphs on lines of their own), for
    /// webhook payloads and notifications.
    pub fn plain_text(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.content.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            for part in &p.children {
                match part.kind {
                    InlineKind::Text => out.push_str(part.text.as_deref().unwrap_or_default()),
                    InlineKind::Mention => {
                        out.push('@');
                        out.push_str(part.user.as_deref().unwrap_or_default());
                    }
                    InlineKind::Link => out.push_str(
                        part.text
                            .as_deref()
                            .or(part.url.as_deref())
                            .unwrap_or_default(),
                    ),
                }
            }
        }
        out
    }

    /// A body of one paragraph of plain text (tests, bots).
    pub fn text(s: &str) -> Body {
        Body {
            content: vec![Paragraph {
                kind: ParagraphKind::Paragraph,
                children: vec![Inline::text(s)],
            }],
        }
    }
}

impl Inline {
    /// A plain text part.
    pub fn text(s: &str) -> Inline {
        Inline {
            kind: InlineKind::Text,
            text: Some(s.into()),
            bold: false,
            italic: false,
            code: false,
            user: None,
            url: None,
        }
    }

    /// A mention of `user`.
    pub fn mention(user: &str) -> Inline {
        Inline {
            kind: InlineKind::Mention,
            text: None,
            user: Some(user.into()),
            ..Inline::text("")
        }
    }
}

/// A link target: an absolute `http` or `https` URL without spaces or control characters
/// (a `javascript:` or `data:` link would run in the reader's page).
fn check_url(url: &str) -> Result<(), String> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(format!("a link URL is at most {MAX_URL_CHARS} characters"));
    }
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or("a link URL starts with https:// or http://")?;
    if rest.is_empty() || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("a link URL has a host and no spaces or control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<Body, String> {
        let body: Body = serde_json::from_value(v).map_err(|e| e.to_string())?;
        body.check()?;
        Ok(body)
    }

    #[test]
    fn a_body_of_text_mentions_and_links_parses_and_reads_as_plain_text() {
        let body = parse(serde_json::json!({ "content": [
            { "type": "paragraph", "children": [
                { "text": "Look at " }, { "text": "this", "bold": true },
                { "type": "mention", "user": "ada" }, { "type": "mention", "user": "ada" },
            ]},
            { "type": "paragraph", "children": [{ "type": "link", "url": "https://example.com", "text": "spec" }]}
        ]}))
        .unwrap();
        assert_eq!(body.mentions(), vec!["ada".to_string()]);
        assert_eq!(body.plain_text(), "Look at this@ada@ada\nspec");
        // Round trip: what is stored reads back the same.
        let again: Body = serde_json::from_str(&serde_json::to_string(&body).unwrap()).unwrap();
        assert_eq!(again, body);
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        let para = |children: serde_json::Value| serde_json::json!({ "content": [{ "type": "paragraph", "children": children }] });
        for (case, v) in [
            ("no paragraphs", serde_json::json!({ "content": [] })),
            ("html", serde_json::json!({ "html": "<b>x</b>" })),
            ("empty", para(serde_json::json!([]))),
            (
                "js link",
                para(serde_json::json!([{ "type": "link", "url": "javascript:alert(1)" }])),
            ),
            (
                "mention without user",
                para(serde_json::json!([{ "type": "mention" }])),
            ),
            (
                "mention with text",
                para(serde_json::json!([{ "type": "mention", "user": "a", "text": "x" }])),
            ),
            (
                "text with url",
                para(serde_json::json!([{ "text": "a", "url": "https://x" }])),
            ),
            (
                "unknown mark",
                para(serde_json::json!([{ "text": "a", "underline": true }])),
            ),
            ("control", para(serde_json::json!([{ "text": "a\u{0}" }]))),
            (
                "too long",
                para(serde_json::json!([{ "text": "x".repeat(MAX_TEXT_CHARS + 1) }])),
            ),
        ] {
            assert!(parse(v).is_err(), "{case}");
        }
        let many: Vec<_> = (0..=MAX_MENTIONS)
            .map(|i| serde_json::json!({ "type": "mention", "user": format!("u{i}") }))
            .collect();
        assert!(
            parse(para(serde_json::Value::Array(many))).is_err(),
            "mentions"
        );
        let parts = |n: usize| {
            serde_json::Value::Array((0..n).map(|_| serde_json::json!({ "text": "a" })).collect())
        };
        assert!(parse(para(parts(MAX_PARAGRAPH_PARTS))).is_ok(), "parts");
        assert!(
            parse(para(parts(MAX_PARAGRAPH_PARTS + 1))).is_err(),
            "parts"
        );
    }

    /// The bounds a schema states hold exactly: a paragraph's parts, a link's characters
    /// (not bytes: `maxLength` counts characters).
    #[test]
    fn bounds_count_items_and_characters() {
        let para = |children: serde_json::Value| serde_json::json!({ "content": [{ "type": "paragraph", "children": children }] });
        let link = |len: usize| {
            let url = format!("https://{}", "é".repeat(len - "https://".len()));
            para(serde_json::json!([{ "type": "link", "url": url }]))
        };
        assert!(parse(link(MAX_URL_CHARS)).is_ok());
        assert!(parse(link(MAX_URL_CHARS + 1)).is_err());
        // Paragraphs full of parts: every one is allowed, up to the budget of characters.
        let full: Vec<_> = (0..MAX_PARAGRAPHS)
            .map(|_| {
                let parts: Vec<_> = (0..MAX_PARAGRAPH_PARTS)
                    .map(|_| serde_json::json!({ "text": "ab" }))
                    .collect();
                serde_json::json!({ "type": "paragraph", "children": parts })
            })
            .collect();
        const { assert!(MAX_PARTS * 2 <= MAX_TEXT_CHARS) };
        assert!(parse(serde_json::json!({ "content": full })).is_ok());
    }
}
