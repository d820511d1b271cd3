//! Collecting a caller's key presses: a prompt, then digits until the
//! maximum, a terminator key or a pause; re-prompts when nothing was pressed.

use std::time::Duration;

use graph_comms_client::GraphClientError;
use graph_comms_model::{CommsNotification, Prompt, Tone};

use crate::operation::call_ended;

/// What [`CallContext::collect_digits`](crate::CallContext::collect_digits) collects.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectDigits {
    prompts: Vec<Prompt>,
    max_digits: usize,
    terminator: Option<Tone>,
    first_digit_timeout: Duration,
    inter_digit_timeout: Duration,
    reprompts: u32,
}

/// A digit collection that cannot be asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CollectDigitsError {
    /// `max_digits` is 0: nothing could ever be collected.
    #[error("max_digits must be at least 1")]
    NoDigits,
}

impl CollectDigits {
    /// Up to `max_digits` presses, with no prompt, no terminator, 5 s for the
    /// first press and 3 s between presses, and no re-prompt.
    ///
    /// # Errors
    ///
    /// [`CollectDigitsError::NoDigits`] when `max_digits` is 0.
    pub fn new(max_digits: usize) -> Result<Self, CollectDigitsError> {
        if max_digits == 0 {
            return Err(CollectDigitsError::NoDigits);
        }
        Ok(Self {
            prompts: Vec::new(),
            max_digits,
            terminator: None,
            first_digit_timeout: Duration::from_secs(5),
            inter_digit_timeout: Duration::from_secs(3),
            reprompts: 0,
        })
    }

    /// Played first, and again at each re-prompt (the caller may press during it).
    #[must_use]
    pub fn prompt(mut self, prompts: Vec<Prompt>) -> Self {
        self.prompts = prompts;
        self
    }

    /// A key that ends the input early (typically `#`); it is not part of the digits.
    #[must_use]
    pub fn terminator(mut self, tone: Tone) -> Self {
        self.terminator = Some(tone);
        self
    }

    /// How long to wait for the first press (after the prompt was sent).
    #[must_use]
    pub fn first_digit_timeout(mut self, timeout: Duration) -> Self {
        self.first_digit_timeout = timeout;
        self
    }

    /// How long a pause between presses ends the input.
    #[must_use]
    pub fn inter_digit_timeout(mut self, timeout: Duration) -> Self {
        self.inter_digit_timeout = timeout;
        self
    }

    /// How many times to play the prompt again when nothing was pressed.
    #[must_use]
    pub fn reprompts(mut self, reprompts: u32) -> Self {
        self.reprompts = reprompts;
        self
    }

    pub(crate) fn prompts(&self) -> &[Prompt] {
        &self.prompts
    }

    pub(crate) fn rounds(&self) -> u32 {
        self.reprompts.saturating_add(1)
    }

    pub(crate) fn first_digit_wait(&self) -> Duration {
        self.first_digit_timeout
    }

    pub(crate) fn inter_digit_wait(&self) -> Duration {
        self.inter_digit_timeout
    }
}

/// Why no digits were collected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    /// Nothing was pressed, after every re-prompt.
    #[error("no key pressed in time")]
    Timeout,
    /// The call ended while collecting.
    #[error("the call ended while collecting digits")]
    HungUp,
    /// Graph refused the tone subscription or the prompt.
    #[error("graph refused a request while collecting digits: {0}")]
    Graph(#[from] GraphClientError),
    /// The bot stopped while collecting.
    #[error("the bot stopped while collecting digits")]
    Stopped,
}

/// The presses collected so far, in `sequenceId` order: with a shared store
/// a press can come through the inbox after a later one came straight in.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    presses: std::collections::BTreeMap<i64, Tone>,
    before: Option<i64>,
}

/// What one notification means to a collection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Nothing new for the collection.
    Nothing,
    /// A press was added; more may come.
    Digit,
    /// The input is complete (the maximum, or the terminator after a digit).
    Done,
    /// The call ended.
    HungUp,
}

impl Collected {
    /// Presses with a `sequenceId` at or below `before` were handled before
    /// the collection began.
    pub(crate) fn after(before: Option<i64>) -> Self {
        Self {
            presses: std::collections::BTreeMap::new(),
            before,
        }
    }

    /// The digits in press order up to the maximum, and whether the input
    /// is complete (the maximum, or the terminator after a digit; a terminator
    /// before any digit ends nothing).
    fn read(&self, spec: &CollectDigits) -> (String, bool) {
        let mut digits = String::new();
        for tone in self.presses.values() {
            if spec.terminator.as_ref() == Some(tone) {
                if digits.is_empty() {
                    continue;
                }
                return (digits, true);
            }
            if let Some(key) = tone.key() {
                digits.push(key);
                if digits.len() >= spec.max_digits {
                    return (digits, true);
                }
            }
        }
        (digits, false)
    }

    /// The digits in press order, up to the terminator and the maximum.
    pub(crate) fn digits(&self, spec: &CollectDigits) -> String {
        self.read(spec).0
    }

    fn complete(&self, spec: &CollectDigits) -> bool {
        self.read(spec).1
    }

    /// Whether a press is missing between those collected (it may still come
    /// through the shared store's inbox).
    pub(crate) fn has_gap(&self) -> bool {
        let (Some(first), Some(last)) = (self.presses.keys().next(), self.presses.keys().next_back()) else {
            return false;
        };
        let start = self.before.map_or(*first, |before| before + 1);
        usize::try_from(last - start + 1) != Ok(self.presses.len())
    }

    /// Feeds one notification of the call.
    pub(crate) fn hear(&mut self, notification: &CommsNotification, spec: &CollectDigits) -> Heard {
        if call_ended(notification) {
            return Heard::HungUp;
        }
        let Some(tone) = notification.call().and_then(|call| call.tone_info.as_ref()) else {
            return Heard::Nothing;
        };
        let (Some(sequence), Some(pressed)) = (tone.sequence_id, tone.tone.as_ref()) else {
            return Heard::Nothing;
        };
        // Graph repeats the last toneInfo on later notifications.
        if self.before.is_some_and(|before| sequence <= before) || self.presses.contains_key(&sequence) {
            return Heard::Nothing;
        }
        self.presses.insert(sequence, pressed.clone());
        if self.complete(spec) {
            Heard::Done
        } else if spec.terminator.as_ref() == Some(pressed) {
            Heard::Nothing
        } else {
            Heard::Digit
        }
    }
}

#[cfg(test)]
mod tests {
    use graph_comms_model::CommsNotification;

    use super::*;

    fn tone(sequence: i64, tone: &str) -> CommsNotification {
        serde_json::from_value(serde_json::json!({
            "changeType": "updated",
            "resourceUrl": "/communications/calls/c1",
            "resourceData": {
                "@odata.type": "#microsoft.graph.call",
                "state": "established",
                "toneInfo": { "@odata.type": "#microsoft.graph.toneInfo", "sequenceId": sequence, "tone": tone }
            }
        }))
        .expect("a tone notification")
    }

    #[test]
    fn max_digits_of_zero_is_refused() {
        assert_eq!(CollectDigits::new(0), Err(CollectDigitsError::NoDigits));
    }

    #[test]
    fn repeated_and_older_presses_count_once_and_the_maximum_ends_the_input() {
        let spec = CollectDigits::new(3).expect("spec");
        let mut collected = Collected::after(Some(1));
        assert_eq!(
            collected.hear(&tone(1, "tone9"), &spec),
            Heard::Nothing,
            "before the collection"
        );
        assert_eq!(collected.hear(&tone(2, "tone1"), &spec), Heard::Digit);
        assert_eq!(collected.hear(&tone(2, "tone1"), &spec), Heard::Nothing, "repeated");
        assert_eq!(collected.hear(&tone(3, "star"), &spec), Heard::Digit);
        assert_eq!(collected.hear(&tone(4, "tone0"), &spec), Heard::Done);
        assert_eq!(collected.digits(&spec), "1*0");
    }

    #[test]
    fn the_terminator_ends_the_input_and_is_not_a_digit() {
        let spec = CollectDigits::new(6).expect("spec").terminator(Tone::Pound);
        let mut collected = Collected::after(None);
        assert_eq!(
            collected.hear(&tone(1, "pound"), &spec),
            Heard::Nothing,
            "nothing to end yet"
        );
        assert_eq!(collected.hear(&tone(2, "tone4"), &spec), Heard::Digit);
        assert_eq!(collected.hear(&tone(3, "pound"), &spec), Heard::Done);
        assert_eq!(collected.digits(&spec), "4");
    }

    #[test]
    fn a_press_that_arrives_after_a_later_one_keeps_its_place() {
        let spec = CollectDigits::new(3).expect("spec");
        let mut collected = Collected::after(None);
        assert_eq!(collected.hear(&tone(2, "tone7"), &spec), Heard::Digit);
        assert!(
            !collected.has_gap(),
            "the first press seen starts the count without a baseline"
        );
        let mut after_one = Collected::after(Some(0));
        after_one.hear(&tone(2, "tone7"), &spec);
        assert!(after_one.has_gap(), "press 1 is missing");
        assert_eq!(collected.hear(&tone(1, "tone2"), &spec), Heard::Digit);
        assert_eq!(collected.hear(&tone(3, "tone1"), &spec), Heard::Done);
        assert_eq!(collected.digits(&spec), "271");
    }

    #[test]
    fn a_terminated_call_is_a_hang_up() {
        let spec = CollectDigits::new(1).expect("spec");
        let ended: CommsNotification = serde_json::from_value(serde_json::json!({
            "changeType": "deleted",
            "resourceUrl": "/communications/calls/c1",
            "resourceData": { "@odata.type": "#microsoft.graph.call", "state": "terminated" }
        }))
        .expect("a terminated notification");
        assert_eq!(Collected::after(None).hear(&ended, &spec), Heard::HungUp);
    }
}
