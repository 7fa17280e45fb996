import { links, MessagePage, type ViewContext } from './layout.js'

/**
 * The pages that only say something. None shows an error's internals: the words are written here or
 * are the core's `detail`, never a stack trace.
 */

export function SignInPage({ view }: { view: ViewContext }) {
  return (
    <MessagePage view={view} title="Sign in to manage API keys">
      <p>This page shows your account’s API keys once you are signed in.</p>
    </MessagePage>
  )
}

export function NotFoundPage({ view, what = 'key' }: { view: ViewContext; what?: 'key' | 'page' }) {
  return (
    <MessagePage view={view} title={what === 'key' ? 'No such key' : 'Page not found'}>
      <p>
        {what === 'key'
          ? 'There is no key at this address in your account. It may belong to another account, or the link may be wrong.'
          : 'There is nothing at this address.'}
      </p>
      <p>
        <a href={links(view.mount).list}>All keys</a>
      </p>
    </MessagePage>
  )
}

export function CrossSitePage({ view }: { view: ViewContext }) {
  return (
    <MessagePage view={view} title="Form refused">
      <p>
        This form was sent from another site, or your browser did not say where it came from, so nothing was changed. If you used this page,
        go back to it, reload it and try again.
      </p>
    </MessagePage>
  )
}

export function UnavailablePage({ view, detail }: { view: ViewContext; detail: string }) {
  return (
    <MessagePage view={view} title="Try again shortly">
      <p>{detail}</p>
    </MessagePage>
  )
}

export function FailurePage({ view, title, detail }: { view: ViewContext; title: string; detail: string }) {
  return (
    <MessagePage view={view} title={title}>
      <p>{detail}</p>
      <p>
        <a href={links(view.mount).list}>All keys</a>
      </p>
    </MessagePage>
  )
}
