//! The auto attendant (`[menu]`): a prompt, one key press chooses where the
//! call goes; no press (or a key with no option) goes to the operator.

use std::fmt;
use std::time::Duration;

use graph_comms_handler::model::Prompt;
use graph_comms_handler::{CollectDigits, CollectDigitsError};

use crate::routing::{Target, same_id};

/// A menu the receptionist plays to callers before transferring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    /// Only calls to this identity hear the menu; all calls when `None`.
    pub match_called_id: Option<String>,
    /// The prompt ("press 1 for sales, 2 for support").
    pub prompt_uri: String,
    /// How long to wait for a press after the prompt started.
    pub timeout: Duration,
    /// How often the prompt is played again when nothing was pressed.
    pub reprompts: u32,
    /// Each key and the targets it leads to.
    pub options: Vec<MenuOption>,
    /// Where a caller who pressed nothing (or a key with no option) goes;
    /// `None`: the targets the routing chose for the call.
    pub operator: Option<Vec<Target>>,
}

/// One key of the menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuOption {
    /// The keypad key (`0`–`9`, `*`, `#`).
    pub key: char,
    /// Where it leads.
    pub targets: Vec<Target>,
}

/// What the caller chose.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Choice {
    /// A key with an option.
    Key(char),
    /// No press, or a key with no option: the operator.
    Operator {
        /// The key pressed, if any.
        pressed: Option<char>,
    },
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(key) => write!(f, "pressed {key}"),
            Self::Operator { pressed: Some(key) } => write!(f, "pressed {key} (no such option): operator"),
            Self::Operator { pressed: None } => f.write_str("no key pressed: operator"),
        }
    }
}

impl Menu {
    /// Whether a call to `called_id` hears the menu (ids compare as the
    /// routes' do: without case or dashes).
    pub fn applies_to(&self, called_id: Option<&str>) -> bool {
        self.match_called_id
            .as_deref()
            .is_none_or(|wanted| called_id.is_some_and(|id| same_id(id, wanted)))
    }

    /// One key, the prompt, the timeout and the re-prompts.
    ///
    /// # Errors
    ///
    /// None in practice: one digit is a valid collection.
    pub fn collection(&self) -> Result<CollectDigits, CollectDigitsError> {
        Ok(CollectDigits::new(1)?
            .prompt(vec![Prompt::media(self.prompt_uri.clone())])
            .first_digit_timeout(self.timeout)
            .reprompts(self.reprompts))
    }

    /// The longest the menu can take: every round times out.
    pub fn longest(&self) -> Duration {
        self.timeout.saturating_mul(self.reprompts.saturating_add(1))
    }

    /// The choice for what was pressed.
    pub fn choose(&self, pressed: Option<char>) -> Choice {
        match pressed {
            Some(key) if self.options.iter().any(|o| o.key == key) => Choice::Key(key),
            pressed => Choice::Operator { pressed },
        }
    }

    /// The targets a choice leads to; `routed` when the operator is the routing's choice.
    pub fn targets(&self, choice: &Choice, routed: Vec<Target>) -> Vec<Target> {
        match choice {
            Choice::Key(key) => self
                .options
                .iter()
                .find(|o| o.key == *key)
                .map_or(routed, |o| o.targets.clone()),
            Choice::Operator { .. } => self.operator.clone().unwrap_or(routed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn menu() -> Menu {
        Menu {
            match_called_id: Some("front-desk".into()),
            prompt_uri: "https://bot.example/menu.wav".into(),
            timeout: Duration::from_secs(4),
            reprompts: 2,
            options: vec![
                MenuOption {
                    key: '1',
                    targets: vec![Target::user("sales")],
                },
                MenuOption {
                    key: '2',
                    targets: vec![Target::user("support")],
                },
            ],
            operator: Some(vec![Target::user("operator")]),
        }
    }

    #[test]
    fn a_key_with_an_option_leads_to_its_targets_and_anything_else_to_the_operator() {
        let menu = menu();
        let routed = vec![Target::user("routed")];
        assert_eq!(menu.choose(Some('2')), Choice::Key('2'));
        assert_eq!(
            menu.targets(&Choice::Key('2'), routed.clone()),
            vec![Target::user("support")]
        );
        for pressed in [None, Some('9')] {
            let choice = menu.choose(pressed);
            assert_eq!(choice, Choice::Operator { pressed });
            assert_eq!(menu.targets(&choice, routed.clone()), vec![Target::user("operator")]);
        }
        let without_operator = Menu { operator: None, ..menu };
        assert_eq!(
            without_operator.targets(&Choice::Operator { pressed: None }, routed.clone()),
            routed
        );
    }

    #[test]
    fn the_menu_answers_only_its_called_identity_and_lasts_at_most_every_round() {
        let menu = menu();
        assert!(menu.applies_to(Some("front-desk")));
        assert!(menu.applies_to(Some("FRONTDESK")), "ids compare as the routes' do");
        assert!(!menu.applies_to(Some("other")));
        assert!(
            Menu {
                match_called_id: None,
                ..menu.clone()
            }
            .applies_to(None)
        );
        assert_eq!(menu.longest(), Duration::from_secs(12));
    }
}
