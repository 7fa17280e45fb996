import type { ApiKey } from '../../core/types.js'
import { maskedKey } from '../format.js'
import { Layout, links, type ViewContext } from './layout.js'

/**
 * The confirmation that names the key. One markup for both ways in: a page of its own without
 * script (`GET <key>/revoke`), and a modal `<dialog>` on the key's page with script. The confirming
 * button reads "Revoke key"; "Cancel" is the default focus in the dialog, so Enter does not revoke.
 */
function RevokeConfirmation({ view, apiKey: key, inDialog }: { view: ViewContext; apiKey: ApiKey; inDialog: boolean }) {
  const href = links(view.mount)
  const Heading = inDialog ? 'h2' : 'h1'
  return (
    <>
      <Heading id={inDialog ? 'revoke-dialog-title' : 'revoke-title'}>Revoke “{key.name}”?</Heading>
      <p id={inDialog ? 'revoke-dialog-text' : 'revoke-text'}>
        Requests made with <code>{maskedKey(key)}</code> will be refused at once. This cannot be undone: programs that use this key stop
        working until they get a new one.
      </p>
      <div class="actions">
        <form method="post" action={href.revoke(key.id)}>
          <button type="submit" class="danger">
            Revoke key
          </button>
        </form>
        {inDialog ? (
          <form method="dialog">
            <button type="submit" autofocus>
              Cancel
            </button>
          </form>
        ) : (
          <a href={href.key(key.id)}>Cancel</a>
        )}
      </div>
    </>
  )
}

export function RevokeDialog({ view, apiKey }: { view: ViewContext; apiKey: ApiKey }) {
  return (
    <dialog id="revoke-dialog" aria-labelledby="revoke-dialog-title" aria-describedby="revoke-dialog-text">
      <RevokeConfirmation view={view} apiKey={apiKey} inDialog={true} />
    </dialog>
  )
}

export function RevokePage({ view, apiKey }: { view: ViewContext; apiKey: ApiKey }) {
  return (
    <Layout view={view} title={`Revoke “${apiKey.name}”`}>
      <section class="card" aria-labelledby="revoke-title">
        <RevokeConfirmation view={view} apiKey={apiKey} inDialog={false} />
      </section>
    </Layout>
  )
}
