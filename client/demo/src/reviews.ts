// Reviews of a branch, inside the history panel: the branch's reviews with their state and
// verdicts; a named reviewer approves or requests changes (with an optional comment); the
// requester (or an owner) withdraws; an editor asks members for a review. A project with
// `require_review_for_merge` merges a branch only once one of its reviews is approved.

import type { ConversationRoutes, Review, Role } from '../../src/index.js'
import type { People } from './talk.js'
import { escapeHtml, when } from './ui.js'

/** What a reviews box needs. */
export interface ReviewsDeps {
  api: ConversationRoutes
  project: () => Promise<string>
  me: () => string
  role: () => Role
  people: People
  /**
   * Runs an action with the history panel's busy state and error display; `keep` leaves an
   * error shown before in place (for reloads).
   */
  run: (what: string, fn: () => Promise<void>, keep?: boolean) => Promise<boolean>
  /** Says what was done, in the panel. */
  note: (text: string) => void
  /** Runs after the box rendered (the panel applies the role to its buttons). */
  rendered: () => void
}

/** A reviews box for one branch. */
export interface ReviewsBox {
  readonly branch: string
  load (): Promise<boolean>
  reviews (): Review[]
}

const STATE: Record<Review['state'], string> = {
  pending: 'pending',
  approved: 'approved',
  changes_requested: 'changes requested',
  withdrawn: 'withdrawn'
}

/** Fills `box` with the reviews of `branch` (`label` names it to the user). */
export function mountReviews (box: HTMLElement, branch: string, label: string, deps: ReviewsDeps): ReviewsBox {
  let reviews: Review[] = []
  let loaded = false
  /** The reviewers ticked in the request form, kept across re-renders. */
  const ticked = new Set<string>()
  box.classList.add('reviews')
  box.dataset.reviews = branch

  const who = (sub: string): string => (sub === deps.me() ? 'you' : deps.people.nameOf(sub))

  const reviewHtml = (r: Review): string => {
    const me = deps.me()
    const verdictOf = (sub: string): Review['verdicts'][number] | undefined => r.verdicts.find((v) => v.reviewer === sub)
    const reviewers = r.reviewers.map((sub) => {
      const v = verdictOf(sub)
      const state = v === undefined ? 'waiting' : v.verdict === 'approved' ? 'approved' : 'changes requested'
      return `<li data-reviewer="${escapeHtml(sub)}" data-verdict="${v?.verdict ?? 'waiting'}"><span class="reviewer">${escapeHtml(who(sub))}</span>: <span class="verdict">${state}</span>` +
        `${v?.comment != null && v.comment !== '' ? ` — “${escapeHtml(v.comment)}”` : ''}</li>`
    }).join('')
    const open = r.state !== 'withdrawn'
    const mine = r.reviewers.includes(me) && open
    const withdraw = open && (r.requested_by === me || deps.role() === 'owner')
    return `<li class="review" data-review="${r.id}" data-state="${r.state}">
      <div class="hitem-head"><span class="tag tag-review tag-${r.state}">${STATE[r.state]}</span><strong>Review #${r.id}</strong></div>
      <div class="hitem-meta">asked by ${escapeHtml(who(r.requested_by))} · ${escapeHtml(when(r.created_at))}${r.version !== null ? ` · of version #${r.version}` : ''}</div>
      ${r.comment !== null && r.comment !== '' ? `<div class="hitem-desc">“${escapeHtml(r.comment)}”</div>` : ''}
      <ul class="verdicts">${reviewers}</ul>
      ${mine
        ? `<div class="verdict-form"><input class="verdict-comment" maxlength="2000" placeholder="Comment (optional)" aria-label="Verdict comment">
           <div class="hitem-actions"><button type="button" class="primary" data-act="approve">Approve</button><button type="button" data-act="request-changes">Request changes</button></div></div>`
        : ''}
      ${withdraw ? '<div class="hitem-actions"><button type="button" data-act="withdraw">Withdraw</button></div>' : ''}
    </li>`
  }

  const render = (): void => {
    const me = deps.me()
    const candidates = deps.people.list().filter((m) => m.sub !== me && m.role !== 'viewer')
      .sort((a, b) => Number(deps.people.present(b.sub)) - Number(deps.people.present(a.sub)) || (a.sub < b.sub ? -1 : 1))
    box.innerHTML = `<h4>Reviews of “${escapeHtml(label)}”</h4>
      <ul class="review-list">${!loaded ? '<li class="empty">Loading reviews…</li>' : reviews.length === 0 ? '<li class="empty">No reviews yet.</li>' : reviews.map(reviewHtml).join('')}</ul>
      <form class="review-request stack-form" autocomplete="off">
        <fieldset class="reviewer-pick"><legend>Ask for a review</legend>
          ${candidates.length === 0
            ? '<p class="muted">No other member to ask yet: reviewers are members who signed in to this project.</p>'
            : candidates.map((m) => `<label class="pick"><input type="checkbox" name="reviewer" value="${escapeHtml(m.sub)}"${ticked.has(m.sub) ? ' checked' : ''} data-needs-edit="Requesting a review">` +
              ` ${escapeHtml(deps.people.nameOf(m.sub))}${deps.people.nameOf(m.sub) !== m.sub ? ` <span class="muted">${escapeHtml(m.sub)}</span>` : ''} <span class="muted">${escapeHtml(m.role)}${deps.people.present(m.sub) ? ' · here' : ''}</span></label>`).join('')}
        </fieldset>
        <input class="review-note" maxlength="2000" placeholder="Note for the reviewers (optional)" aria-label="Note for the reviewers" data-needs-edit="Requesting a review">
        <button type="submit" data-act="request" data-needs-edit="Requesting a review">Request review</button>
      </form>`
    deps.rendered()
  }

  const load = (): Promise<boolean> => deps.run(`Listing the reviews of “${label}” failed`, async () => {
    const project = await deps.project()
    const [page] = await Promise.all([deps.api.reviews.list(project, branch), deps.people.load(5000)])
    reviews = page.reviews
    loaded = true
    render()
  }, true)

  box.addEventListener('change', (ev) => {
    const input = ev.target as HTMLInputElement
    if (input.name !== 'reviewer') return
    if (input.checked) ticked.add(input.value)
    else ticked.delete(input.value)
  })
  box.addEventListener('submit', (ev) => {
    ev.preventDefault()
    const form = ev.target as HTMLFormElement
    const reviewers = [...ticked]
    const note = form.querySelector<HTMLInputElement>('.review-note')?.value.trim() ?? ''
    if (reviewers.length === 0) {
      void deps.run('Requesting a review failed', async () => { throw new Error('pick at least one reviewer') })
      return
    }
    void deps.run(`Requesting a review of “${label}” failed`, async () => {
      const r = await deps.api.reviews.request(await deps.project(), branch, { reviewers, comment: note === '' ? undefined : note })
      ticked.clear()
      deps.note(`Asked ${r.reviewers.map(who).join(', ')} to review “${label}” (review #${r.id}).`)
      await load()
    })
  })
  box.addEventListener('click', (ev) => {
    const button = (ev.target as Element).closest<HTMLButtonElement>('button[data-act]')
    const li = button?.closest<HTMLElement>('li.review')
    if (button === null || li == null) return
    const id = Number(li.dataset.review)
    const act = button.dataset.act
    if (act === 'approve' || act === 'request-changes') {
      const verdict = act === 'approve' ? 'approved' : 'changes_requested'
      const comment = li.querySelector<HTMLInputElement>('.verdict-comment')?.value.trim() ?? ''
      void deps.run(`Submitting the verdict on review #${id} failed`, async () => {
        const r = await deps.api.reviews.submit(await deps.project(), branch, id, verdict, comment === '' ? undefined : comment)
        deps.note(`${verdict === 'approved' ? 'Approved' : 'Requested changes to'} “${label}”: review #${id} is ${STATE[r.state]}.`)
        await load()
      })
    } else if (act === 'withdraw') {
      void deps.run(`Withdrawing review #${id} failed`, async () => {
        await deps.api.reviews.withdraw(await deps.project(), branch, id)
        deps.note(`Withdrew review #${id}.`)
        await load()
      })
    }
  })
  render()
  return { branch, load, reviews: () => [...reviews] }
}
