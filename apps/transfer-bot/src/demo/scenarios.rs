//! The scripted calls: who is called, how each target answers, what the
//! receptionist should do; and the demo's auto attendant.

use super::*;

/// One scripted call: who is called, how the targets behave, what should happen.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name shown in the table.
    pub name: &'static str,
    /// The called identity (an application instance id) the route matches.
    pub called_id: &'static str,
    /// The route's targets.
    pub targets: Vec<Target>,
    /// How each target id behaves in the emulator.
    pub behaviors: Vec<(String, TargetBehavior)>,
    /// Call from a phone number instead of a Teams user.
    pub from_phone: bool,
    /// Make it a group call (the transfer then carries `transferee`).
    pub group: bool,
    /// Notification delivery faults for the call.
    pub faults: DeliveryFaults,
    /// Keys the caller presses once the bot listens for them (the menu).
    pub presses: Vec<Tone>,
    /// The targets the bot should try, in order (log labels).
    pub expected_path: Vec<String>,
    /// The outcome it should reach.
    pub expected: CallOutcome,
}

fn user(id: &str) -> Target {
    Target::user(id)
}

fn phone(number: &str) -> anyhow::Result<Target> {
    Ok(Target::phone(PhoneNumber::parse(number)?))
}

fn transferred(target: &Target) -> CallOutcome {
    CallOutcome::Transferred {
        target: target.to_string(),
    }
}

/// The scripted calls, in the order they run.
pub fn scenarios() -> anyhow::Result<Vec<Scenario>> {
    let base = |name, called_id, targets: Vec<Target>, behaviors: Vec<(&str, TargetBehavior)>| {
        let expected = targets.last().map_or(CallOutcome::Apologised, transferred);
        Scenario {
            name,
            called_id,
            expected_path: targets.iter().map(ToString::to_string).collect(),
            targets,
            behaviors: behaviors.into_iter().map(|(id, b)| (id.to_owned(), b)).collect(),
            from_phone: false,
            group: false,
            faults: DeliveryFaults::default(),
            presses: Vec::new(),
            expected,
        }
    };
    // The menu's callers (see `demo_menu`): the route's target is the operator.
    let menu_call = |name, presses: Vec<Tone>, reaches: Target| Scenario {
        expected_path: vec![reaches.to_string()],
        expected: transferred(&reaches),
        presses,
        ..base(
            name,
            MENU_CALLED_ID,
            vec![user("olga")],
            vec![
                ("olga", TargetBehavior::Accept),
                ("sam", TargetBehavior::Accept),
                ("sue", TargetBehavior::Accept),
            ],
        )
    };
    let partner_queue = Target::application_instance("partner-queue").in_tenant(OTHER_TENANT);
    let pstn = phone("+14255550100")?;
    let pstn_desk = phone("+14255550142")?.consultative();
    let unreachable = phone("+14255550199")?;
    Ok(vec![
        base(
            "blind transfer",
            "ri-blind",
            vec![user("alice")],
            vec![("alice", TargetBehavior::Accept)],
        ),
        base(
            "declined, falls back",
            "ri-fallback",
            vec![user("bob"), user("carol")],
            vec![("bob", TargetBehavior::Decline), ("carol", TargetBehavior::Accept)],
        ),
        base(
            "consultative transfer",
            "ri-consult",
            vec![user("dave").consultative()],
            vec![("dave", TargetBehavior::Accept)],
        ),
        base(
            "consult declined, falls back",
            "ri-consult-fallback",
            vec![user("ivan").consultative(), user("judy")],
            vec![("ivan", TargetBehavior::Decline), ("judy", TargetBehavior::Accept)],
        ),
        Scenario {
            from_phone: true,
            ..base(
                "PSTN target",
                "ri-pstn",
                vec![pstn.clone()],
                vec![(pstn.id(), TargetBehavior::Accept)],
            )
        },
        base(
            "PSTN consultative (from the resource account)",
            "ri-pstn-consult",
            vec![pstn_desk.clone()],
            vec![(pstn_desk.id(), TargetBehavior::Accept)],
        ),
        Scenario {
            group: true,
            ..base(
                "group call (transferee)",
                "ri-group",
                vec![user("erin")],
                vec![("erin", TargetBehavior::Accept)],
            )
        },
        Scenario {
            expected: CallOutcome::Apologised,
            ..base(
                "all targets fail",
                "ri-all-fail",
                vec![user("frank"), unreachable.clone(), user("grace")],
                vec![
                    ("frank", TargetBehavior::Busy),
                    (unreachable.id(), TargetBehavior::Decline),
                    (
                        "grace",
                        TargetBehavior::NoAnswer {
                            after: Duration::from_millis(50),
                        },
                    ),
                ],
            )
        },
        menu_call("menu: caller presses 2", vec![Tone::Tone2], user("sue")),
        menu_call("menu: no key, operator", Vec::new(), user("olga")),
        base(
            "7505 tenant mismatch, falls back",
            "ri-7505",
            vec![partner_queue, user("kim")],
            vec![("kim", TargetBehavior::Accept)],
        ),
        // A copy of peggy's decline, without a message id, lands while quinn
        // rings: the bot asks Graph, which says `transferring`, and waits.
        Scenario {
            faults: DeliveryFaults {
                duplicate_later: Some(DuplicateLater::of(Duration::from_millis(300), [CallState::Established])),
                omit_message_ids: true,
                ..DeliveryFaults::default()
            },
            ..base(
                "decline redelivered while next rings",
                "ri-redelivered",
                vec![user("peggy"), user("quinn")],
                vec![
                    ("peggy", TargetBehavior::Decline),
                    (
                        "quinn",
                        TargetBehavior::AcceptAfter {
                            after: Duration::from_millis(1200),
                        },
                    ),
                ],
            )
        },
        Scenario {
            faults: DeliveryFaults {
                reorder: true,
                duplicate: true,
                ..DeliveryFaults::default()
            },
            ..base(
                "reordered + duplicated",
                "ri-faults",
                vec![user("heidi")],
                vec![("heidi", TargetBehavior::Accept)],
            )
        },
    ])
}

/// The bot's resource account: the source of consultation calls to numbers.
pub(crate) const DEMO_RESOURCE_ACCOUNT: &str = "ri-resource-account";

/// The called identity the demo's menu answers.
const MENU_CALLED_ID: &str = "ri-menu";
/// A tenant that is not the bot's: a resource account there is Graph's 7505.
const OTHER_TENANT: &str = "0a1b2c3d-0000-4000-8000-00000000beef";

/// The demo's auto attendant: 1 for sales (sam), 2 for support (sue), the
/// operator (olga) otherwise; one short round, so the demo stays quick.
pub(crate) fn demo_menu() -> Menu {
    Menu {
        match_called_id: Some(MENU_CALLED_ID.to_owned()),
        prompt_uri: "https://transfer-bot.invalid/audio/menu.wav".to_owned(),
        timeout: Duration::from_secs(1),
        reprompts: 0,
        options: vec![
            MenuOption {
                key: '1',
                targets: vec![Target::user("sam")],
            },
            MenuOption {
                key: '2',
                targets: vec![Target::user("sue")],
            },
        ],
        operator: Some(vec![Target::user("olga")]),
    }
}
