// Keikochain governance: proposals and one-human-one-vote voting.
//
// A vote counts only if the voter's account is registered in the humanity registry
// (checked by a cross-contract call at vote time), so sock-puppet accounts cannot vote.
// Single choice among `options_count` options; after the window closes anyone may
// finalize: below quorum, or with a tie for first place, the proposal is defeated,
// otherwise it succeeded with the most-voted option.

#[starknet::interface]
trait IHumanityRegistry<TContractState> {
    fn is_human(self: @TContractState, account: starknet::ContractAddress) -> bool;
}

#[starknet::contract]
mod Governance {
    use super::{IHumanityRegistryDispatcher, IHumanityRegistryDispatcherTrait};
    use starknet::{ContractAddress, get_block_timestamp, get_caller_address};
    use zeroable::Zeroable;

    // Bounds the tally loop in `finalize`.
    const MAX_OPTIONS: u32 = 32;

    const STATUS_PENDING: felt252 = 'pending';
    const STATUS_ACTIVE: felt252 = 'active';
    const STATUS_ENDED: felt252 = 'ended';
    const STATUS_SUCCEEDED: felt252 = 'succeeded';
    const STATUS_DEFEATED: felt252 = 'defeated';

    #[derive(Copy, Drop, Serde, starknet::Store)]
    struct Proposal {
        creator: ContractAddress,
        // Hash of the off-chain text (title, body, option labels).
        metadata_hash: felt252,
        options_count: u32,
        // Voting is open for start <= block timestamp < end (seconds).
        start: u64,
        end: u64,
        // Minimum number of votes cast for the result to count.
        quorum: u64,
        total_votes: u64,
        finalized: bool,
        // 'succeeded' or 'defeated' once finalized, else 0.
        outcome: felt252,
        winning_option: u32,
    }

    #[storage]
    struct Storage {
        registry: ContractAddress,
        proposals_created: u64,
        proposals: LegacyMap<u64, Proposal>,
        tallies: LegacyMap<(u64, u32), u64>,
        // option + 1 the account voted for; 0 means it has not voted.
        ballots: LegacyMap<(u64, ContractAddress), u32>,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    enum Event {
        ProposalCreated: ProposalCreated,
        VoteCast: VoteCast,
        ProposalFinalized: ProposalFinalized,
    }

    #[derive(Drop, starknet::Event)]
    struct ProposalCreated {
        #[key]
        proposal_id: u64,
        #[key]
        creator: ContractAddress,
        metadata_hash: felt252,
        options_count: u32,
        start: u64,
        end: u64,
        quorum: u64,
    }

    #[derive(Drop, starknet::Event)]
    struct VoteCast {
        #[key]
        proposal_id: u64,
        #[key]
        voter: ContractAddress,
        option: u32,
    }

    #[derive(Drop, starknet::Event)]
    struct ProposalFinalized {
        #[key]
        proposal_id: u64,
        outcome: felt252,
        winning_option: u32,
        total_votes: u64,
    }

    #[constructor]
    fn constructor(ref self: ContractState, registry: ContractAddress) {
        assert(!registry.is_zero(), 'zero registry');
        self.registry.write(registry);
    }

    #[external(v0)]
    fn create_proposal(
        ref self: ContractState,
        metadata_hash: felt252,
        options_count: u32,
        start: u64,
        end: u64,
        quorum: u64
    ) -> u64 {
        let creator = get_caller_address();
        assert(!creator.is_zero(), 'caller is zero');
        assert(options_count >= 2, 'too few options');
        assert(options_count <= MAX_OPTIONS, 'too many options');
        assert(start < end, 'invalid voting window');
        assert(end > get_block_timestamp(), 'voting window in the past');

        let proposal_id = self.proposals_created.read() + 1;
        self.proposals_created.write(proposal_id);
        self
            .proposals
            .write(
                proposal_id,
                Proposal {
                    creator,
                    metadata_hash,
                    options_count,
                    start,
                    end,
                    quorum,
                    total_votes: 0,
                    finalized: false,
                    outcome: 0,
                    winning_option: 0,
                }
            );
        self
            .emit(
                ProposalCreated {
                    proposal_id, creator, metadata_hash, options_count, start, end, quorum
                }
            );
        proposal_id
    }

    #[external(v0)]
    fn cast_vote(ref self: ContractState, proposal_id: u64, option: u32) {
        let voter = get_caller_address();
        let mut proposal = read_proposal(@self, proposal_id);
        let now = get_block_timestamp();
        assert(now >= proposal.start, 'voting not started');
        assert(now < proposal.end, 'voting closed');
        assert(option < proposal.options_count, 'invalid option');
        assert(self.ballots.read((proposal_id, voter)) == 0, 'already voted');
        let registry = IHumanityRegistryDispatcher { contract_address: self.registry.read() };
        assert(registry.is_human(voter), 'caller is not human');

        self.ballots.write((proposal_id, voter), option + 1);
        self.tallies.write((proposal_id, option), self.tallies.read((proposal_id, option)) + 1);
        proposal.total_votes += 1;
        self.proposals.write(proposal_id, proposal);
        self.emit(VoteCast { proposal_id, voter, option });
    }

    #[external(v0)]
    fn finalize(ref self: ContractState, proposal_id: u64) -> felt252 {
        let mut proposal = read_proposal(@self, proposal_id);
        assert(!proposal.finalized, 'already finalized');
        assert(get_block_timestamp() >= proposal.end, 'voting still open');

        // Highest tally; a tie for first place has no winner.
        let mut best: u64 = 0;
        let mut winner: u32 = 0;
        let mut tied = false;
        let mut i: u32 = 0;
        loop {
            if i == proposal.options_count {
                break;
            }
            let votes = self.tallies.read((proposal_id, i));
            if votes > best {
                best = votes;
                winner = i;
                tied = false;
            } else if votes == best {
                tied = true;
            }
            i += 1;
        };

        let outcome = if proposal.total_votes < proposal.quorum || tied {
            STATUS_DEFEATED
        } else {
            STATUS_SUCCEEDED
        };
        proposal.finalized = true;
        proposal.outcome = outcome;
        proposal.winning_option = if outcome == STATUS_SUCCEEDED {
            winner
        } else {
            0
        };
        self.proposals.write(proposal_id, proposal);
        self
            .emit(
                ProposalFinalized {
                    proposal_id,
                    outcome,
                    winning_option: proposal.winning_option,
                    total_votes: proposal.total_votes
                }
            );
        outcome
    }

    #[external(v0)]
    fn get_proposal(self: @ContractState, proposal_id: u64) -> Proposal {
        read_proposal(self, proposal_id)
    }

    // 'pending' | 'active' | 'ended' (awaiting finalize) | 'succeeded' | 'defeated'
    #[external(v0)]
    fn get_status(self: @ContractState, proposal_id: u64) -> felt252 {
        let proposal = read_proposal(self, proposal_id);
        if proposal.finalized {
            return proposal.outcome;
        }
        let now = get_block_timestamp();
        if now < proposal.start {
            STATUS_PENDING
        } else if now < proposal.end {
            STATUS_ACTIVE
        } else {
            STATUS_ENDED
        }
    }

    #[external(v0)]
    fn get_votes(self: @ContractState, proposal_id: u64, option: u32) -> u64 {
        self.tallies.read((proposal_id, option))
    }

    #[external(v0)]
    fn has_voted(self: @ContractState, proposal_id: u64, account: ContractAddress) -> bool {
        self.ballots.read((proposal_id, account)) != 0
    }

    #[external(v0)]
    fn proposal_count(self: @ContractState) -> u64 {
        self.proposals_created.read()
    }

    #[external(v0)]
    fn get_registry(self: @ContractState) -> ContractAddress {
        self.registry.read()
    }

    fn read_proposal(self: @ContractState, proposal_id: u64) -> Proposal {
        let proposal = self.proposals.read(proposal_id);
        assert(!proposal.creator.is_zero(), 'unknown proposal');
        proposal
    }
}
