use super::log::event_fields;
use super::setup::load_hard_state;
use super::Exit;
use crate::election::{Event, HardState, Role};
use crate::log::Line;
use crate::storage::Store;

fn store_with(tag: &str, text: &str) -> Store {
    let dir = std::env::temp_dir().join(format!("raft-rt-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(crate::storage::FILE_NAME), text).unwrap();
    Store::new(dir)
}

/// The lines the Python suites parse, byte for byte after the time stamp.
#[test]
fn event_lines_keep_their_format() {
    use crate::election::{Cause, Disregard, Verdict};
    let names: Vec<String> = ["Node1", "Node2", "Node3"].map(String::from).to_vec();
    let cases = [
            (
                Event::Became {
                    role: Role::Candidate,
                    term: 1,
                    cause: Cause::PreVoteWon,
                },
                None,
                "node=Node1 term=1 role=Candidate event=become to=Candidate reason=pre-vote-won",
            ),
            (
                Event::Elected {
                    term: 1,
                    votes: 2,
                    of: 3,
                    after_ms: 5,
                },
                None,
                "node=Node1 term=1 role=Leader event=elected votes=2/3 after_ms=5",
            ),
            (
                Event::Vote {
                    candidate: 1,
                    term: 4,
                    pre: false,
                    verdict: Verdict::Granted,
                },
                None,
                "node=Node1 term=1 role=Leader event=vote candidate=Node2 for_term=4 granted=true reason=granted",
            ),
            (
                Event::Vote {
                    candidate: 2,
                    term: 4,
                    pre: true,
                    verdict: Verdict::LeaderLease,
                },
                None,
                "node=Node1 term=1 role=Leader event=pre-vote candidate=Node3 for_term=4 granted=false reason=leader-lease",
            ),
            (
                Event::Term {
                    from: 3,
                    to: 4,
                    role: Role::Follower,
                },
                None,
                "node=Node1 term=4 role=Follower event=term from=3",
            ),
            (
                Event::Ignored {
                    from: 9,
                    reason: Disregard::NotAPeer,
                },
                Some(2),
                "node=Node1 term=1 role=Leader event=ignored from=? reason=not-a-peer suppressed=2",
            ),
            (
                Event::Leader { leader: 2 },
                None,
                "node=Node1 term=1 role=Leader event=leader leader=Node3",
            ),
        ];
    for (event, held, want) in cases {
        let (term, role) = event.stamp().unwrap_or((1, Role::Leader));
        let line = Line::new("node=Node1")
            .kv("term", term)
            .kv("role", role.as_str())
            .kv("event", event.name());
        let text = event_fields(line, &event, &names, held).into_string();
        let (_, rest) = text.split_once(' ').unwrap_or_default();
        assert_eq!(rest, want);
    }
}

#[test]
fn a_saved_vote_loads_as_the_member_it_names() {
    let names: Vec<String> = ["Node1", "Node2"].map(String::from).to_vec();
    let store = store_with("member", "term=7\nvoted_for=Node2\n");
    let (hard, note) = load_hard_state(&store, &names).unwrap();
    assert_eq!(
        hard,
        HardState {
            term: 7,
            voted_for: Some(1)
        }
    );
    assert_eq!(note, None);
}

#[test]
fn a_vote_for_a_removed_member_moves_to_the_next_term_without_a_vote() {
    let names: Vec<String> = ["Node1", "Node2"].map(String::from).to_vec();
    let store = store_with("removed", "term=7\nvoted_for=Node9\n");
    let (hard, note) = load_hard_state(&store, &names).unwrap();
    assert_eq!(
        hard,
        HardState {
            term: 8,
            voted_for: None
        }
    );
    assert!(note.is_some_and(|n| n.contains("Node9")));
    let last = store_with("last", &format!("term={}\nvoted_for=Node9\n", u64::MAX));
    assert!(matches!(
        load_hard_state(&last, &names),
        Err(Exit::State(_))
    ));
}
